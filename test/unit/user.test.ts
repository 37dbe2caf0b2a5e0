import { describe, expect, it } from "vitest";
import { MiniboxError } from "../../src/errors.js";
import {
  normaliseCapability,
  parseEnvFile,
  parseEnvFlag,
  parseLabelFile,
  parseLabelFlag,
  parseUserns,
} from "../../src/runtime/run-options.js";
import {
  parseGroup,
  parsePasswd,
  type ResolvedUser,
  resolveChown,
  resolveUser,
} from "../../src/runtime/user.js";
import { errorOf } from "./plan-fixtures.js";

const BUSYBOX_PASSWD =
  "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n";
const BUSYBOX_GROUP = "root:x:0:\nnogroup:x:65534:\n";

const PASSWD = [
  "root:x:0:0:root:/root:/bin/ash",
  "# a comment",
  "",
  "daemon:x:2:2:daemon:/sbin:/sbin/nologin",
  "www-data:x:82:82:Linux User,,,:/home/www-data:/sbin/nologin",
  "app:x:1000:1000::/home/app:/bin/sh",
  "nohome:x:1001:1001:::/bin/sh",
  "broken:x:notanumber:0::/:/bin/sh",
  "nobody:x:65534:65534:nobody:/:/sbin/nologin",
  "",
].join("\n");

const GROUP = [
  "root:x:0:root",
  "bin:x:1:root,bin,daemon",
  "daemon:x:2:root,bin,daemon",
  "wheel:x:10:root, app",
  "www-data:x:82:",
  "app:x:1000:app",
  "docker:x:999:app,other",
  "video:x:27:app",
  "nogroup:x:65533:",
  "bad:x:xx:app",
  "",
].join("\n");

describe("parsePasswd / parseGroup", () => {
  it("parses fields and skips comments, blanks and malformed lines", () => {
    const users = parsePasswd(PASSWD);
    expect(users.map((u) => u.name)).toEqual([
      "root",
      "daemon",
      "www-data",
      "app",
      "nohome",
      "nobody",
    ]);
    expect(users[2]).toEqual({
      name: "www-data",
      password: "x",
      uid: 82,
      gid: 82,
      gecos: "Linux User,,,",
      home: "/home/www-data",
      shell: "/sbin/nologin",
    });
  });

  it("parses group members", () => {
    const groups = parseGroup(GROUP);
    expect(groups.find((g) => g.name === "bin")).toEqual({
      name: "bin",
      password: "x",
      gid: 1,
      members: ["root", "bin", "daemon"],
    });
    expect(groups.find((g) => g.name === "wheel")?.members).toEqual(["root", "app"]);
    expect(groups.find((g) => g.name === "www-data")?.members).toEqual([]);
    expect(groups.some((g) => g.name === "bad")).toBe(false);
  });

  it("tolerates CRLF and short lines", () => {
    expect(parsePasswd("root:x:0:0\r\n")).toEqual([
      { name: "root", password: "x", uid: 0, gid: 0, gecos: "", home: "", shell: "" },
    ]);
    expect(parseGroup("g:x:5\r\n")).toEqual([{ name: "g", password: "x", gid: 5, members: [] }]);
  });
});

describe("resolveUser: every -u form", () => {
  const cases: [string, ResolvedUser][] = [
    ["", { uid: 0, gid: 0, additionalGids: [0, 1, 2, 10], home: "/root", name: "root" }],
    ["root", { uid: 0, gid: 0, additionalGids: [0, 1, 2, 10], home: "/root", name: "root" }],
    ["0", { uid: 0, gid: 0, additionalGids: [0, 1, 2, 10], home: "/root", name: "root" }],
    [
      "app",
      { uid: 1000, gid: 1000, additionalGids: [10, 27, 999, 1000], home: "/home/app", name: "app" },
    ],
    [
      "1000",
      { uid: 1000, gid: 1000, additionalGids: [10, 27, 999, 1000], home: "/home/app", name: "app" },
    ],
    // numeric, not in passwd: gid 0, home /
    ["4242", { uid: 4242, gid: 0, additionalGids: [0], home: "/" }],
    ["4242:4343", { uid: 4242, gid: 4343, additionalGids: [4343], home: "/" }],
    ["4242:docker", { uid: 4242, gid: 999, additionalGids: [999], home: "/" }],
    // explicit group: no supplementary groups (runc)
    ["app:docker", { uid: 1000, gid: 999, additionalGids: [999], home: "/home/app", name: "app" }],
    ["app:4343", { uid: 1000, gid: 4343, additionalGids: [4343], home: "/home/app", name: "app" }],
    ["1000:27", { uid: 1000, gid: 27, additionalGids: [27], home: "/home/app", name: "app" }],
    [
      "www-data",
      { uid: 82, gid: 82, additionalGids: [82], home: "/home/www-data", name: "www-data" },
    ],
    [":wheel", { uid: 0, gid: 10, additionalGids: [10], home: "/root", name: "root" }],
    ["daemon", { uid: 2, gid: 2, additionalGids: [1, 2], home: "/sbin", name: "daemon" }],
    ["nohome", { uid: 1001, gid: 1001, additionalGids: [1001], home: "/", name: "nohome" }],
    ["+7", { uid: 7, gid: 0, additionalGids: [0], home: "/" }],
    ["4294967294", { uid: 4294967294, gid: 0, additionalGids: [0], home: "/" }],
  ];
  for (const [spec, want] of cases) {
    it(JSON.stringify(spec), () => {
      expect(resolveUser(spec, PASSWD, GROUP)).toEqual(want);
    });
  }

  it("supplementary groups include the primary gid (CVE-2023-25173) and are sorted, unique", () => {
    const group = "z:x:50:u\na:x:40:u\nprimary:x:100:u\ndup:x:40:u\n";
    expect(resolveUser("u", "u:x:100:100::/home/u:/bin/sh\n", group).additionalGids).toEqual([
      40, 50, 100,
    ]);
  });

  it("nobody from a busybox-like passwd", () => {
    expect(resolveUser("nobody", BUSYBOX_PASSWD, BUSYBOX_GROUP)).toEqual({
      uid: 65534,
      gid: 65534,
      additionalGids: [65534],
      home: "/nonexistent",
      name: "nobody",
    });
    expect(resolveUser("nobody:nogroup", BUSYBOX_PASSWD, BUSYBOX_GROUP).gid).toBe(65534);
    expect(resolveUser("65534", BUSYBOX_PASSWD, BUSYBOX_GROUP).name).toBe("nobody");
    expect(resolveUser("", BUSYBOX_PASSWD, BUSYBOX_GROUP)).toEqual({
      uid: 0,
      gid: 0,
      additionalGids: [0],
      home: "/root",
      name: "root",
    });
  });

  it("no passwd or group file", () => {
    expect(resolveUser("", undefined, undefined)).toEqual({
      uid: 0,
      gid: 0,
      additionalGids: [0],
      home: "/",
    });
    expect(resolveUser("1000:1000", undefined, undefined)).toEqual({
      uid: 1000,
      gid: 1000,
      additionalGids: [1000],
      home: "/",
    });
  });
});

describe("resolveUser: errors", () => {
  it("a name not in passwd", () => {
    const e = errorOf(() => resolveUser("ghost", PASSWD, GROUP));
    expect(e.message).toBe("unable to find user ghost: no matching entries in passwd file");
    expect(errorOf(() => resolveUser("ghost", undefined, GROUP)).message).toBe(
      "unable to find user ghost: no matching entries in passwd file",
    );
    // a malformed line does not count as an entry
    expect(errorOf(() => resolveUser("broken", PASSWD, GROUP)).message).toMatch(
      /unable to find user broken/,
    );
  });

  it("a group name not in group", () => {
    expect(errorOf(() => resolveUser("app:ghosts", PASSWD, GROUP)).message).toBe(
      "unable to find group ghosts: no matching entries in group file",
    );
    expect(errorOf(() => resolveUser("1000:ghosts", PASSWD, undefined)).message).toBe(
      "unable to find group ghosts: no matching entries in group file",
    );
  });

  it("numbers out of range", () => {
    for (const spec of ["4294967295", "-1", "99999999999999999999", "0:4294967295", "0:-5"]) {
      expect(errorOf(() => resolveUser(spec, PASSWD, GROUP)).message).toMatch(/out of range/);
    }
  });

  it("too many colons", () => {
    expect(errorOf(() => resolveUser("a:b:c", PASSWD, GROUP)).message).toMatch(/invalid user/);
  });
});

describe("parseEnvFile", () => {
  const host = { HOST_ONLY: "from-host", EMPTY_ON_HOST: "" };
  const cases: [string, string, string[]][] = [
    ["simple", "A=1\nB=2\n", ["A=1", "B=2"]],
    ["comments and blank lines", "# c\n\nA=1\n   \n\t\n  # indented comment\n", ["A=1"]],
    ["no quote processing", `A="quoted"\nB='single'`, [`A="quoted"`, "B='single'"]],
    [
      "value kept as is (spaces, =, #)",
      "A= spaced value  \nB=x=y\nC=#not a comment",
      ["A= spaced value  ", "B=x=y", "C=#not a comment"],
    ],
    ["leading whitespace of the line dropped", "   A=1\n\tB=2", ["A=1", "B=2"]],
    ["empty value", "A=\n", ["A="]],
    [
      "bare name takes the host value",
      "HOST_ONLY\nEMPTY_ON_HOST\n",
      ["HOST_ONLY=from-host", "EMPTY_ON_HOST="],
    ],
    ["bare name absent on host is dropped", "MISSING\nA=1", ["A=1"]],
    ["bare name with trailing spaces", "HOST_ONLY  \n", ["HOST_ONLY=from-host"]],
    ["CRLF", "A=1\r\nB=2\r\n", ["A=1", "B=2"]],
    ["BOM", "\uFEFFA=1\n", ["A=1"]],
    [
      "dots and dashes allowed",
      "spring.profiles.active=dev\nmy-var=1",
      ["spring.profiles.active=dev", "my-var=1"],
    ],
    ["duplicates kept in order (the spec collapses them)", "A=1\nA=2", ["A=1", "A=2"]],
    ["empty file", "", []],
  ];
  for (const [name, text, want] of cases) {
    it(name, () => {
      expect(parseEnvFile(text, host)).toEqual(want);
    });
  }

  const bad: [string, string, RegExp][] = [
    ["starts with a digit", "A=1\n1X=y\n", /line 2: .*"1X".*digit/],
    ["space in the name", "# c\n\nMY VAR=1", /line 3: .*whitespace/],
    ["space before =", "A =1", /line 1: .*whitespace/],
    ["no name", "A=1\n=value", /line 2: no variable name/],
  ];
  for (const [name, text, re] of bad) {
    it(`error: ${name}`, () => {
      expect(errorOf(() => parseEnvFile(text, host)).message).toMatch(re);
    });
  }

  it("error names the file when given", () => {
    expect(errorOf(() => parseEnvFile("1X=y", {}, "./app.env")).message).toMatch(
      /^\.\/app\.env line 1:/,
    );
  });
});

describe("parseEnvFlag", () => {
  const host = { USER: "alice", EMPTY: "" };
  it.each([
    ["A=1", "A=1"],
    ["A=", "A="],
    ["A=b=c", "A=b=c"],
    ["USER", "USER=alice"],
    ["EMPTY", "EMPTY="],
    ["NOPE", undefined],
  ])("%s", (value, want) => {
    expect(parseEnvFlag(value, host)).toBe(want);
  });
  it.each(["", "=x", "1A=b", "A B=c"])("rejects %j", (value) => {
    expect(() => parseEnvFlag(value, host)).toThrow(MiniboxError);
  });
});

describe("normaliseCapability", () => {
  it.each([
    ["net_admin", "CAP_NET_ADMIN"],
    ["NET_ADMIN", "CAP_NET_ADMIN"],
    ["cap_sys_ptrace", "CAP_SYS_PTRACE"],
    ["CAP_CHOWN", "CAP_CHOWN"],
    ["ALL", "ALL"],
    ["all", "ALL"],
    ["checkpoint_restore", "CAP_CHECKPOINT_RESTORE"],
  ])("%s → %s", (name, want) => {
    expect(normaliseCapability(name)).toBe(want);
  });
  it.each(["bogus", "CAP_", "", "CAP_ALL"])("rejects %j", (name) => {
    expect(errorOf(() => normaliseCapability(name)).message).toMatch(/unknown capability/);
  });
});

describe("labels and --userns", () => {
  it("parseLabelFlag", () => {
    expect(parseLabelFlag("a=b")).toEqual(["a", "b"]);
    expect(parseLabelFlag("a=b=c")).toEqual(["a", "b=c"]);
    expect(parseLabelFlag("a=")).toEqual(["a", ""]);
    expect(parseLabelFlag("a")).toEqual(["a", ""]);
    expect(() => parseLabelFlag("")).toThrow(MiniboxError);
    expect(() => parseLabelFlag("=v")).toThrow(MiniboxError);
  });

  it("parseLabelFile", () => {
    expect(parseLabelFile("# c\ncom.example.a=1\n\nb\nc=x y \ncom.example.a=2\n")).toEqual({
      "com.example.a": "2",
      b: "",
      c: "x y ",
    });
    expect(errorOf(() => parseLabelFile("ok=1\nbad key=1")).message).toMatch(/line 2/);
    const proto = parseLabelFile("__proto__=x");
    expect(Object.getPrototypeOf(proto)).toBe(Object.prototype);
    expect(Object.keys(proto)).toEqual(["__proto__"]);
  });

  it("parseUserns", () => {
    expect(parseUserns("host")).toBe("host");
    expect(parseUserns("")).toBe("private");
    expect(() => parseUserns("private")).toThrow(MiniboxError);
  });
});

describe("resolveChown (COPY --chown)", () => {
  const passwd =
    "root:x:0:0::/root:/bin/sh\napp:x:1000:50::/home/app:/bin/sh\nweb:x:33:33::/:/bin/false\n";
  const group = "root:x:0:\nstaff:x:50:app\nweb:x:33:\n";
  it("numbers need no files; a lone uid is also the gid", () => {
    expect(resolveChown("7", undefined, undefined)).toEqual({ uid: 7, gid: 7 });
    expect(resolveChown("7:9", undefined, undefined)).toEqual({ uid: 7, gid: 9 });
  });
  it("names come from the image; a lone name takes its own group, else its primary one", () => {
    expect(resolveChown("web", passwd, group)).toEqual({ uid: 33, gid: 33 });
    expect(resolveChown("app", passwd, group)).toEqual({ uid: 1000, gid: 50 });
    expect(resolveChown("app:web", passwd, group)).toEqual({ uid: 1000, gid: 33 });
    expect(resolveChown("app:0", passwd, group)).toEqual({ uid: 1000, gid: 0 });
  });
  it("unknown names fail with one clear line", () => {
    expect(errorOf(() => resolveChown("ghost", passwd, group)).message).toMatch(
      /can't find uid for user ghost/,
    );
    expect(errorOf(() => resolveChown("app:ghosts", passwd, group)).message).toMatch(
      /can't find gid for group ghosts/,
    );
    expect(errorOf(() => resolveChown("a:b:c", passwd, group)).message).toMatch(/invalid --chown/);
  });
});
