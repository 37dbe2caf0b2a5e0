import { describe, expect, it } from "vitest";
import { MiniboxError } from "../../src/errors.js";
import { containerMounts, parseMountFlag, parseVolumeFlag } from "../../src/runtime/mount-spec.js";

function errorOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(MiniboxError);
    return (e as MiniboxError).message;
  }
  throw new Error("expected a MiniboxError");
}

describe("parseVolumeFlag (-v)", () => {
  it("an absolute source is a bind mount; :ro makes it read-only", () => {
    expect(parseVolumeFlag("/home/me/site/:/etc/files:ro")).toEqual({
      type: "bind",
      source: "/home/me/site",
      target: "/etc/files",
      readOnly: true,
      mode: "ro",
      noCopy: false,
      createSource: true,
      spec: "/home/me/site/:/etc/files:ro",
    });
    expect(parseVolumeFlag("/a:/b:rw")).toMatchObject({
      type: "bind",
      readOnly: false,
      mode: "rw",
    });
  });

  it("a name is a named volume; a lone path an anonymous one", () => {
    expect(parseVolumeFlag("http-server:/etc/files:ro")).toMatchObject({
      type: "volume",
      source: "http-server",
      target: "/etc/files",
      readOnly: true,
    });
    expect(parseVolumeFlag("/var/cache/")).toMatchObject({
      type: "volume",
      source: "",
      target: "/var/cache",
      readOnly: false,
      spec: undefined,
    });
    expect(parseVolumeFlag("data:/d:nocopy")).toMatchObject({ noCopy: true, readOnly: false });
  });

  it("refuses what Docker refuses, with Docker's words", () => {
    expect(errorOf(() => parseVolumeFlag("./data:/x"))).toBe(
      'create ./data: "./data" includes invalid characters for a local volume name, only "[a-zA-Z0-9][a-zA-Z0-9_.-]" are allowed. If you intended to pass a host directory, use absolute path',
    );
    expect(errorOf(() => parseVolumeFlag("x:/d"))).toMatch(/invalid characters/); // one character
    expect(errorOf(() => parseVolumeFlag("vol:rel"))).toMatch(/mount path must be absolute: 'rel'/);
    expect(errorOf(() => parseVolumeFlag("/d:ro"))).toBe("invalid volume specification: '/d:ro'");
    expect(errorOf(() => parseVolumeFlag("/a:/b:bogus"))).toMatch(/invalid mode: bogus/);
    expect(errorOf(() => parseVolumeFlag("/a:/b:ro,rw"))).toMatch(/invalid mode/);
    expect(errorOf(() => parseVolumeFlag("/a:/b:c:d"))).toMatch(/invalid volume specification/);
    expect(errorOf(() => parseVolumeFlag("v:/"))).toMatch(/destination can't be '\/'/);
    expect(errorOf(() => parseVolumeFlag("/a:/b:nocopy"))).toMatch(/not allowed for bind/);
    expect(errorOf(() => parseVolumeFlag(""))).toMatch(/invalid volume specification/);
  });
});

describe("parseMountFlag (--mount)", () => {
  it("type=bind needs an existing source (checked later), no creation", () => {
    expect(parseMountFlag("type=bind,source=/srv,target=/etc/files,readonly")).toEqual({
      type: "bind",
      source: "/srv",
      target: "/etc/files",
      readOnly: true,
      mode: "ro",
      noCopy: false,
      createSource: false,
    });
    expect(parseMountFlag("type=bind,src=/s,dst=/d,ro=false")).toMatchObject({ readOnly: false });
  });

  it("type=tmpfs: tmpfs-size in Docker's units, tmpfs-mode in octal, Docker's default flags", () => {
    expect(parseMountFlag("type=tmpfs,dst=/t,tmpfs-size=2m,tmpfs-mode=0700")).toMatchObject({
      type: "tmpfs",
      target: "/t",
      tmpfsOptions: ["noexec", "nosuid", "nodev", "mode=700", "size=2m"],
    });
    expect(parseMountFlag("type=tmpfs,dst=/t,readonly").tmpfsOptions).toContain("ro");
    expect(errorOf(() => parseMountFlag("type=tmpfs,dst=/t,tmpfs-mode=9"))).toMatch(
      /invalid value for tmpfs-mode: 9/,
    );
  });

  it("type=volume is the default; no source makes an anonymous volume", () => {
    expect(parseMountFlag("target=/d")).toMatchObject({ type: "volume", source: "", target: "/d" });
    expect(parseMountFlag("type=volume,source=v1,destination=/d,volume-nocopy")).toMatchObject({
      source: "v1",
      noCopy: true,
    });
  });

  it("refuses unknown keys and types, missing fields, relative paths", () => {
    expect(errorOf(() => parseMountFlag("type=npipe,target=/t"))).toMatch(
      /type 'npipe' is not supported/,
    );
    expect(errorOf(() => parseMountFlag("type=bind,source=/h,target=/t,tmpfs-size=1m"))).toMatch(
      /cannot mix 'tmpfs-\*' options with mount type 'bind'/,
    );
    expect(errorOf(() => parseMountFlag("type=bind,target=/t"))).toMatch(/source is required/);
    expect(errorOf(() => parseMountFlag("type=bind,source=rel,target=/t"))).toMatch(
      /must be absolute/,
    );
    expect(errorOf(() => parseMountFlag("source=v"))).toMatch(/target is required/);
    expect(errorOf(() => parseMountFlag("target=/t,colour=red"))).toMatch(
      /unexpected key 'colour'/,
    );
    expect(errorOf(() => parseMountFlag("target=/t,readonly=maybe"))).toMatch(/invalid value/);
  });
});

describe("containerMounts: flags plus the image's VOLUMEs", () => {
  it("adds each VOLUME no flag covers as an anonymous volume", () => {
    const flags = [parseVolumeFlag("data:/var/lib/db")];
    const all = containerMounts(flags, { "/var/lib/db": {}, "/var/log/": {}, relative: {} });
    expect(all.map((m) => [m.type, m.source, m.target])).toEqual([
      ["volume", "data", "/var/lib/db"],
      ["volume", "", "/var/log"],
    ]);
  });

  it("two mounts on one path is Docker's 'Duplicate mount point'", () => {
    expect(
      errorOf(() => containerMounts([parseVolumeFlag("aa:/x"), parseVolumeFlag("/h:/x/")], {})),
    ).toBe("Duplicate mount point: /x");
  });
});
