// A newc ("070701") cpio writer: the format the kernel unpacks an initramfs
// from (Documentation/driver-api/early-userspace/buffer-format.rst). Entries
// are described, not taken from the host, so device nodes such as
// /dev/console need no mknod here and every file is owned by root.
import { closeSync, openSync, readFileSync, writeSync } from "node:fs";

export type CpioEntry =
  | { type: "dir"; path: string; mode?: number }
  | { type: "file"; path: string; mode?: number; data?: Buffer | string; source?: string }
  | { type: "symlink"; path: string; target: string }
  | { type: "chardev"; path: string; major: number; minor: number; mode?: number };

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;
const S_IFLNK = 0o120000;
const S_IFCHR = 0o020000;

const pad4 = (n: number) => (4 - (n % 4)) % 4;
const hex8 = (n: number) => n.toString(16).padStart(8, "0");

function header(fields: {
  ino: number;
  mode: number;
  nlink: number;
  size: number;
  rdevMajor?: number;
  rdevMinor?: number;
  nameSize: number;
}): string {
  return [
    "070701",
    hex8(fields.ino),
    hex8(fields.mode),
    hex8(0), // uid
    hex8(0), // gid
    hex8(fields.nlink),
    hex8(0), // mtime
    hex8(fields.size),
    hex8(0), // devmajor
    hex8(0), // devminor
    hex8(fields.rdevMajor ?? 0),
    hex8(fields.rdevMinor ?? 0),
    hex8(fields.nameSize),
    hex8(0), // check
  ].join("");
}

/** Write the entries (parents before children, as the kernel creates them in order) to `file`. */
export function writeCpio(file: string, entries: CpioEntry[]): number {
  const fd = openSync(file, "w", 0o600);
  let offset = 0;
  const put = (buf: Buffer | string) => {
    const b = typeof buf === "string" ? Buffer.from(buf, "binary") : buf;
    writeSync(fd, b);
    offset += b.length;
  };
  const record = (
    name: string,
    ino: number,
    mode: number,
    body: Buffer,
    rdev?: [number, number],
  ) => {
    const nameBytes = Buffer.from(`${name}\0`, "utf8");
    put(
      header({
        ino,
        mode,
        nlink: (mode & 0o170000) === S_IFDIR ? 2 : 1,
        size: body.length,
        rdevMajor: rdev?.[0],
        rdevMinor: rdev?.[1],
        nameSize: nameBytes.length,
      }),
    );
    put(nameBytes);
    put(Buffer.alloc(pad4(110 + nameBytes.length)));
    if (body.length > 0) {
      put(body);
      put(Buffer.alloc(pad4(body.length)));
    }
  };
  try {
    let ino = 1;
    for (const e of entries) {
      const name = e.path.replace(/^\/+/, "");
      if (name === "") throw new Error("cpio: empty path");
      switch (e.type) {
        case "dir":
          record(name, ino++, S_IFDIR | (e.mode ?? 0o755), Buffer.alloc(0));
          break;
        case "file": {
          const body =
            e.source !== undefined
              ? readFileSync(e.source)
              : typeof e.data === "string"
                ? Buffer.from(e.data, "utf8")
                : (e.data ?? Buffer.alloc(0));
          record(name, ino++, S_IFREG | (e.mode ?? 0o644), body);
          break;
        }
        case "symlink":
          record(name, ino++, S_IFLNK | 0o777, Buffer.from(e.target, "utf8"));
          break;
        case "chardev":
          record(name, ino++, S_IFCHR | (e.mode ?? 0o600), Buffer.alloc(0), [e.major, e.minor]);
          break;
      }
    }
    record("TRAILER!!!", 0, 0, Buffer.alloc(0));
  } finally {
    closeSync(fd);
  }
  return offset;
}
