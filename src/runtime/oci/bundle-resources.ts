/**
 * linux.resources of a bundle's config.json (memory, cpu, pids, devices,
 * blockIO, hugepages, network), checked field by field into the Spec's
 * SpecResources.
 */
import type { SpecDeviceCgroup } from "../devices.js";
import type { SpecBlockIO, SpecResources } from "../spec.js";
import { array, bad, bool, defined, int, object, optObject, str } from "./spec-fields.js";

export function resources(v: unknown): SpecResources {
  const r = optObject(v, "linux.resources");
  const memory = optObject(r.memory, "linux.resources.memory");
  const cpu = optObject(r.cpu, "linux.resources.cpu");
  const pids = optObject(r.pids, "linux.resources.pids");
  const out: SpecResources = {};
  const mem = {
    limit: int(memory.limit, "linux.resources.memory.limit"),
    swap: int(memory.swap, "linux.resources.memory.swap"),
    reservation: int(memory.reservation, "linux.resources.memory.reservation"),
    swappiness: int(memory.swappiness, "linux.resources.memory.swappiness"),
    disableOOMKiller: bool(memory.disableOOMKiller, "linux.resources.memory.disableOOMKiller"),
  };
  const swappiness = mem.swappiness;
  // runc: -1 (and a uint64 wrapped round) means "the kernel's default".
  if (swappiness !== undefined && swappiness !== -1 && (swappiness < 0 || swappiness > 100)) {
    bad("linux.resources.memory.swappiness", `${swappiness} is not between 0 and 100`);
  }
  if (swappiness === -1) mem.swappiness = undefined;
  if (Object.values(mem).some((x) => x !== undefined)) out.memory = defined(mem);
  const c = {
    shares: int(cpu.shares, "linux.resources.cpu.shares"),
    quota: int(cpu.quota, "linux.resources.cpu.quota"),
    period: int(cpu.period, "linux.resources.cpu.period"),
    cpus: cpuList(cpu.cpus, "linux.resources.cpu.cpus"),
    mems: cpuList(cpu.mems, "linux.resources.cpu.mems"),
  };
  if (Object.values(c).some((x) => x !== undefined)) out.cpu = defined(c);
  const pidsLimit = int(pids.limit, "linux.resources.pids.limit");
  if (pidsLimit !== undefined) out.pids = { limit: pidsLimit };
  if (r.devices !== undefined) out.devices = deviceRules(r.devices);
  const blockIO = blockIOOf(r.blockIO);
  if (blockIO) out.blockIO = blockIO;
  const huge = array(r.hugepageLimits, "linux.resources.hugepageLimits").map((raw, i) => {
    const field = `linux.resources.hugepageLimits[${i}]`;
    const h = object(raw, field);
    return {
      pageSize: str(h.pageSize, `${field}.pageSize`),
      limit: int(h.limit, `${field}.limit`) ?? bad(`${field}.limit`, "is required"),
    };
  });
  if (huge.length > 0) out.hugepageLimits = huge;
  const network = networkOf(r.network);
  if (network) out.network = network;
  return out;
}

/** A cpuset list ("0-3,5"); "" means unset, as in runc. */
function cpuList(v: unknown, field: string): string | undefined {
  const text = v === undefined || v === null ? "" : str(v, field);
  if (text === "") return undefined;
  if (!/^\d+(-\d+)?(,\d+(-\d+)?)*$/.test(text)) {
    bad(field, `${JSON.stringify(text)} is not a list such as "0", "0-3" or "0,2"`);
  }
  return text;
}

const THROTTLES = [
  "throttleReadBpsDevice",
  "throttleWriteBpsDevice",
  "throttleReadIOPSDevice",
  "throttleWriteIOPSDevice",
] as const;

function blockIOOf(v: unknown): SpecBlockIO | undefined {
  if (v === undefined || v === null) return undefined;
  const b = object(v, "linux.resources.blockIO");
  const at = (k: string) => `linux.resources.blockIO.${k}`;
  const device = (raw: unknown, field: string) => {
    const d = object(raw, field);
    const need = (k: string) => int(d[k], `${field}.${k}`) ?? bad(`${field}.${k}`, "is required");
    return { d, major: need("major"), minor: need("minor") };
  };
  const out: SpecBlockIO = defined({
    weight: int(b.weight, at("weight")),
    leafWeight: int(b.leafWeight, at("leafWeight")),
  });
  const weights = array(b.weightDevice, at("weightDevice")).map((raw, i) => {
    const field = `${at("weightDevice")}[${i}]`;
    const { d, major, minor } = device(raw, field);
    return defined({
      major,
      minor,
      weight: int(d.weight, `${field}.weight`),
      leafWeight: int(d.leafWeight, `${field}.leafWeight`),
    });
  });
  if (weights.length > 0) out.weightDevice = weights;
  for (const key of THROTTLES) {
    const list = array(b[key], at(key)).map((raw, i) => {
      const field = `${at(key)}[${i}]`;
      const { d, major, minor } = device(raw, field);
      return {
        major,
        minor,
        rate: int(d.rate, `${field}.rate`) ?? bad(`${field}.rate`, "is required"),
      };
    });
    if (list.length > 0) out[key] = list;
  }
  return Object.keys(out).length > 0 ? out : undefined;
}

function networkOf(v: unknown): SpecResources["network"] {
  if (v === undefined || v === null) return undefined;
  const n = object(v, "linux.resources.network");
  const classID = int(n.classID, "linux.resources.network.classID");
  const priorities = array(n.priorities, "linux.resources.network.priorities").map((raw, i) => {
    const field = `linux.resources.network.priorities[${i}]`;
    const p = object(raw, field);
    return {
      name: str(p.name, `${field}.name`),
      priority: int(p.priority, `${field}.priority`) ?? 0,
    };
  });
  if (classID === undefined && priorities.length === 0) return undefined;
  return defined({ classID, priorities: priorities.length > 0 ? priorities : undefined });
}

function deviceRules(v: unknown): SpecDeviceCgroup[] {
  return array(v, "linux.resources.devices").map((raw, i) => {
    const field = `linux.resources.devices[${i}]`;
    const d = object(raw, field);
    const type = str(d.type, `${field}.type`, "a");
    if (!["a", "c", "b"].includes(type))
      bad(`${field}.type`, `must be a, c or b, not ${JSON.stringify(type)}`);
    const rule: SpecDeviceCgroup = {
      allow: d.allow === true,
      type: type as SpecDeviceCgroup["type"],
      access: str(d.access, `${field}.access`, "rwm"),
    };
    const major = int(d.major, `${field}.major`);
    const minor = int(d.minor, `${field}.minor`);
    if (major !== undefined) rule.major = major;
    if (minor !== undefined) rule.minor = minor;
    return rule;
  });
}
