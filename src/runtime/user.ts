/**
 * Resolving `-u` / the image's User against the container's /etc/passwd and
 * /etc/group, with the rules runc applies for Docker (moby/sys/user
 * GetExecUser). Pure: the caller reads the two files from the rootfs (and
 * passes undefined for a file that does not exist).
 */
import { MiniboxError } from "../errors.js";

export interface ResolvedUser {
  uid: number;
  gid: number;
  additionalGids: number[];
  home: string;
  name?: string;
}

export interface PasswdEntry {
  name: string;
  password: string;
  uid: number;
  gid: number;
  gecos: string;
  home: string;
  shell: string;
}

export interface GroupEntry {
  name: string;
  password: string;
  gid: number;
  members: string[];
}

/** Largest valid uid/gid: (uid_t)-1 is "no id" to the kernel. */
export const MAX_ID = 2 ** 32 - 2;

/** Lines of passwd(5). Blank lines, comments and lines with a non-numeric uid/gid are skipped. */
export function parsePasswd(text: string): PasswdEntry[] {
  const entries: PasswdEntry[] = [];
  for (const fields of lines(text)) {
    const [name = "", password = "", uid = "", gid = "", gecos = "", home = "", shell = ""] =
      fields;
    const u = parseId(uid);
    const g = parseId(gid);
    if (u === undefined || g === undefined) continue;
    entries.push({ name, password, uid: u, gid: g, gecos, home, shell });
  }
  return entries;
}

/** Lines of group(5). Blank lines, comments and lines with a non-numeric gid are skipped. */
export function parseGroup(text: string): GroupEntry[] {
  const entries: GroupEntry[] = [];
  for (const fields of lines(text)) {
    const [name = "", password = "", gid = "", list = ""] = fields;
    const g = parseId(gid);
    if (g === undefined) continue;
    const members = list
      .split(",")
      .map((m) => m.trim())
      .filter((m) => m !== "");
    entries.push({ name, password, gid: g, members });
  }
  return entries;
}

function* lines(text: string): Generator<string[]> {
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#")) continue;
    yield line.split(":");
  }
}

function parseId(text: string): number | undefined {
  if (!/^\d+$/.test(text)) return undefined;
  const n = Number(text);
  return n <= MAX_ID ? n : undefined;
}

/**
 * Docker's rules for `-u` / the image's User: "name", "uid", "name:group",
 * "uid:gid", "name:gid", "uid:group"; an empty user part means uid 0.
 *
 * - A numeric user is always a uid; it need not be in passwd (then gid 0
 *   unless given, home "/"). A name must be in passwd.
 * - A numeric group is always a gid and need not be in group; a name must be.
 * - Supplementary groups (every group listing the user's name as a member,
 *   without the primary gid, sorted) are given only when the user was found in
 *   passwd and no group was given explicitly — as runc does.
 * - ids must be in 0..2^32-2.
 */
export function resolveUser(
  spec: string,
  passwd: string | undefined,
  group: string | undefined,
): ResolvedUser {
  const parts = spec.split(":");
  if (parts.length > 2) {
    throw new MiniboxError(`invalid user ${JSON.stringify(spec)}`, "use USER[:GROUP]");
  }
  const userArg = parts[0] ?? "";
  const groupArg = parts[1] ?? "";

  const uidArg = numericId(userArg, "user");
  const users = passwd === undefined ? [] : parsePasswd(passwd);
  const found =
    userArg === ""
      ? users.find((u) => u.uid === 0)
      : uidArg !== undefined
        ? users.find((u) => u.uid === uidArg)
        : users.find((u) => u.name === userArg);

  const result: ResolvedUser = { uid: 0, gid: 0, additionalGids: [], home: "/" };
  if (found) {
    result.uid = found.uid;
    result.gid = found.gid;
    result.home = found.home || "/";
    result.name = found.name;
  } else if (uidArg !== undefined) {
    result.uid = uidArg;
  } else if (userArg !== "") {
    throw new MiniboxError(
      `unable to find user ${userArg}: no matching entries in passwd file`,
      "use a numeric uid, or a user that exists in the image's /etc/passwd",
    );
  }

  const groups = group === undefined ? [] : parseGroup(group);
  if (groupArg !== "") {
    const gidArg = numericId(groupArg, "group");
    if (gidArg !== undefined) {
      result.gid = gidArg;
    } else {
      const g = groups.find((e) => e.name === groupArg);
      if (!g) {
        throw new MiniboxError(
          `unable to find group ${groupArg}: no matching entries in group file`,
          "use a numeric gid, or a group that exists in the image's /etc/group",
        );
      }
      result.gid = g.gid;
    }
  } else if (found) {
    const name = found.name;
    const gids = groups
      .filter((g) => g.members.includes(name) && g.gid !== result.gid)
      .map((g) => g.gid);
    result.additionalGids = [...new Set(gids)].sort((a, b) => a - b);
  }
  // Like Docker since the fix for CVE-2023-25173: the primary group is
  // always among the supplementary groups, so a process cannot end up with
  // the caller's groups or none at all.
  result.additionalGids = [...new Set([result.gid, ...result.additionalGids])].sort(
    (a, b) => a - b,
  );
  return result;
}

/**
 * `--group-add`: each a group of the container's /etc/group, by name (or by
 * its gid written out), else a number (which need not be in the file);
 * runc's GetAdditionalGroups. The gids, in the order given, each once.
 */
export function resolveGroupAdd(names: readonly string[], group: string | undefined): number[] {
  const groups = group === undefined ? [] : parseGroup(group);
  const out: number[] = [];
  for (const name of names) {
    const found = groups.find((g) => g.name === name || String(g.gid) === name);
    const gid = found?.gid ?? numericId(name, "group");
    if (gid === undefined) {
      throw new MiniboxError(
        `unable to find group ${name}: no matching entries in group file`,
        "use a numeric gid, or a group that exists in the image's /etc/group",
      );
    }
    if (!out.includes(gid)) out.push(gid);
  }
  return out;
}

/** A numeric id (checked for range), or undefined when `text` is a name. */
function numericId(text: string, what: "user" | "group"): number | undefined {
  if (!/^[+-]?\d+$/.test(text)) return undefined;
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < 0 || n > MAX_ID) {
    throw new MiniboxError(
      `${what} id ${text} is out of range`,
      `use a number from 0 to ${MAX_ID}`,
    );
  }
  return n || 0; // "-0" is 0
}

/**
 * `COPY --chown=USER[:GROUP]`: names looked up in the image being built, as
 * Docker's builder does. Without a group, a numeric user gives the same
 * number as gid (Docker's documented rule); a name gives the group of the
 * same name if there is one, else the user's primary group.
 */
export function resolveChown(
  spec: string,
  passwd: string | undefined,
  group: string | undefined,
): { uid: number; gid: number } {
  const parts = spec.split(":");
  const [userArg = "", groupArg] = parts;
  if (parts.length > 2 || userArg === "") {
    throw new MiniboxError(`invalid --chown ${JSON.stringify(spec)}`, "use USER[:GROUP]");
  }
  const users = passwd === undefined ? [] : parsePasswd(passwd);
  const groups = group === undefined ? [] : parseGroup(group);
  const uidArg = numericId(userArg, "user");
  let uid = uidArg;
  let primary = uidArg;
  if (uid === undefined) {
    const found = users.find((u) => u.name === userArg);
    if (!found) {
      throw new MiniboxError(
        `unable to convert uid/gid chown string to host mapping: can't find uid for user ${userArg}`,
        "use a numeric uid, or a user that exists in the image's /etc/passwd",
      );
    }
    uid = found.uid;
    primary = groups.find((g) => g.name === userArg)?.gid ?? found.gid;
  }
  if (groupArg === undefined || groupArg === "") return { uid, gid: primary as number };
  const gidArg = numericId(groupArg, "group");
  if (gidArg !== undefined) return { uid, gid: gidArg };
  const g = groups.find((e) => e.name === groupArg);
  if (!g) {
    throw new MiniboxError(
      `unable to convert uid/gid chown string to host mapping: can't find gid for group ${groupArg}`,
      "use a numeric gid, or a group that exists in the image's /etc/group",
    );
  }
  return { uid, gid: g.gid };
}
