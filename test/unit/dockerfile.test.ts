// biome-ignore-all lint/suspicious/noTemplateCurlyInString: Dockerfile text, not templates
// The Dockerfile parser and Docker's variable expansion: pure functions, table tests.
import { describe, expect, test } from "vitest";
import { expand, type Instruction, parseDockerfile } from "../../src/build/dockerfile.js";
import { MiniboxError } from "../../src/errors.js";

/** Parse one instruction after a FROM line. */
const one = (line: string): Instruction => {
  const all = parseDockerfile(`FROM scratch\n${line}\n`);
  expect(all).toHaveLength(2);
  return all[1];
};

const fails = (text: string, message: string) => {
  let caught: unknown;
  try {
    parseDockerfile(text);
  } catch (e) {
    caught = e;
  }
  expect(caught).toBeInstanceOf(MiniboxError);
  expect((caught as Error).message).toBe(message);
};

describe("FROM", () => {
  test.each<[string, Partial<Instruction>]>([
    ["FROM alpine", { image: "alpine" }],
    ["from alpine:3.19 as build", { image: "alpine:3.19", stage: "build" }],
    ["FROM alpine AS Build", { image: "alpine", stage: "build" }],
    [
      "FROM --platform=linux/arm64 busybox AS b",
      { image: "busybox", stage: "b", platform: "linux/arm64" },
    ],
    [
      "FROM --platform=$BUILDPLATFORM ${BASE:-alpine}",
      { image: "${BASE:-alpine}", platform: "$BUILDPLATFORM" },
    ],
  ])("%s", (line, want) => {
    const [ins] = parseDockerfile(line);
    expect(ins).toMatchObject({ kind: "FROM", line: 1, raw: line, ...want });
  });
  test("stage is absent without AS", () => {
    const [ins] = parseDockerfile("FROM alpine");
    expect(ins).not.toHaveProperty("stage");
    expect(ins).not.toHaveProperty("platform");
  });
});

describe("RUN / CMD / ENTRYPOINT / SHELL", () => {
  test.each<[string, Partial<Instruction>]>([
    ["RUN echo hi && ls", { kind: "RUN", shell: true, command: ["echo hi && ls"] }],
    ['RUN ["echo", "hi"]', { kind: "RUN", shell: false, command: ["echo", "hi"] }],
    ['run [ "a b" ]', { kind: "RUN", shell: false, command: ["a b"] }],
    // not a JSON array of strings: shell form, like Docker
    [
      "RUN [ -f /etc/passwd ] && echo ok",
      { shell: true, command: ["[ -f /etc/passwd ] && echo ok"] },
    ],
    ['CMD ["a", 1]', { kind: "CMD", shell: true, command: ['["a", 1]'] }],
    ["CMD []", { kind: "CMD", shell: false, command: [] }],
    [
      "cmd nginx -g 'daemon off;'",
      { kind: "CMD", shell: true, command: ["nginx -g 'daemon off;'"] },
    ],
    ['ENTRYPOINT ["/entry.sh"]', { kind: "ENTRYPOINT", shell: false, command: ["/entry.sh"] }],
    ["Entrypoint exec top -b", { kind: "ENTRYPOINT", shell: true, command: ["exec top -b"] }],
    // RUN text is not expanded by the parser: the shell does it
    ["RUN echo $HOME", { command: ["echo $HOME"] }],
    ['SHELL ["/bin/bash", "-c"]', { kind: "SHELL", command: ["/bin/bash", "-c"] }],
  ])("%s", (line, want) => {
    expect(one(line)).toMatchObject({ line: 2, raw: line, ...want });
  });
});

describe("continuations and comments", () => {
  test("joined lines keep the line of the instruction's start; raw is the joined text", () => {
    const text = [
      "# a comment",
      "",
      "FROM alpine",
      "RUN apk add \\",
      "    curl \\",
      "  # a comment inside the continuation is skipped",
      "",
      "    git",
      "   # indented comment",
      "CMD sh",
    ].join("\n");
    const ins = parseDockerfile(text);
    expect(ins.map((i) => [i.kind, i.line])).toEqual([
      ["FROM", 3],
      ["RUN", 4],
      ["CMD", 10],
    ]);
    expect(ins[1]).toMatchObject({
      command: ["apk add     curl     git"],
      raw: "RUN apk add     curl     git",
    });
  });
  test("trailing whitespace after the escape still continues; CRLF is accepted", () => {
    const ins = parseDockerfile("FROM a\r\nRUN a \\  \r\n b\r\n");
    expect(ins[1]).toMatchObject({ command: ["a  b"] });
  });
  test("a continuation at end of file ends the instruction", () => {
    expect(parseDockerfile("FROM a\nRUN x \\")[1]).toMatchObject({ command: ["x"] });
  });
  test("escape directive switches to backtick (Windows style)", () => {
    const text = "# escape=`\n\nFROM a\nRUN dir `\n  c:\\\nWORKDIR c:\\app\nCOPY a`$b c:\\dst\\\n";
    const ins = parseDockerfile(text);
    expect(ins[1]).toMatchObject({ kind: "RUN", line: 4, command: ["dir   c:\\"] });
    expect(ins[2]).toMatchObject({ kind: "WORKDIR", value: "c:\\\\app" });
    expect(expand((ins[2] as { value: string }).value, {})).toBe("c:\\app");
    const copy = ins[3] as Extract<Instruction, { kind: "COPY" | "ADD" }>;
    expect(copy.sources.map((s) => expand(s, { b: "X" }))).toEqual(["a$b"]);
    expect(expand(copy.dest, {})).toBe("c:\\dst\\");
  });
  test("syntax directive is ignored; directives after the first line are comments", () => {
    const ins = parseDockerfile(
      "# syntax=docker/dockerfile:1\n# escape=`\nFROM a\n# escape=\\\nRUN x `\n y",
    );
    expect(ins[1]).toMatchObject({ command: ["x  y"] });
  });
  test("a directive after a comment is just a comment", () => {
    const ins = parseDockerfile("# hello\n# escape=`\nFROM a\nRUN x \\\n y");
    expect(ins[1]).toMatchObject({ command: ["x  y"] });
  });
  test("keywords are case-insensitive", () => {
    const ins = parseDockerfile("from a\nWorkDir /x\nrUn true");
    expect(ins.map((i) => i.kind)).toEqual(["FROM", "WORKDIR", "RUN"]);
  });
});

describe("COPY / ADD", () => {
  test.each<[string, Partial<Instruction>]>([
    ["COPY a b", { kind: "COPY", sources: ["a"], dest: "b" }],
    ["COPY a b c dest/", { sources: ["a", "b", "c"], dest: "dest/" }],
    [
      "COPY --from=build --chown=1000:1000 --chmod=755 /out/app /usr/bin/",
      { sources: ["/out/app"], dest: "/usr/bin/", from: "build", chown: "1000:1000", chmod: "755" },
    ],
    ['COPY ["a b", "c", "/dest dir/"]', { sources: ["a b", "c"], dest: "/dest dir/" }],
    ['COPY --chown=app ["x", "y"]', { sources: ["x"], dest: "y", chown: "app" }],
    [
      "add --chmod=644 src.tar.gz /opt/",
      { kind: "ADD", sources: ["src.tar.gz"], dest: "/opt/", chmod: "644" },
    ],
    ["COPY --link a /b", { sources: ["a"], dest: "/b" }],
    ["COPY $SRC ${DEST}", { sources: ["$SRC"], dest: "${DEST}" }],
  ])("%s", (line, want) => {
    expect(one(line)).toMatchObject({ line: 2, raw: line, ...want });
  });
  test("flags that were not given are absent", () => {
    const ins = one("COPY a b");
    expect(ins).not.toHaveProperty("from");
    expect(ins).not.toHaveProperty("chown");
  });
});

describe("ENV / LABEL / ARG", () => {
  test.each<[string, [string, string][]]>([
    ["ENV A=1", [["A", "1"]]],
    [
      'ENV k=v k2="v 2"',
      [
        ["k", "v"],
        ["k2", "v 2"],
      ],
    ],
    ["ENV A b c  d", [["A", "b c  d"]]],
    ['ENV A "quoted value"', [["A", "quoted value"]]],
    ["ENV PATH=/x:$PATH", [["PATH", "/x:$PATH"]]],
    ["ENV A=a\\ b", [["A", "a b"]]],
    [
      "ENV A='$B' C=\"$D\"",
      [
        ["A", "\\$B"],
        ["C", "$D"],
      ],
    ],
    ['ENV A="say \\"hi\\""', [["A", 'say \\"hi\\"']]],
    ["ENV EMPTY=", [["EMPTY", ""]]],
    ['ENV EMPTY=""', [["EMPTY", ""]]],
  ])("%s", (line, pairs) => {
    expect(one(line)).toMatchObject({ kind: "ENV", raw: line, pairs });
  });
  test("ENV values expand to what Docker computes", () => {
    const ins = one('ENV A=\'$B\' C="$B x" D=\\$B E="say \\"hi\\""') as Extract<
      Instruction,
      { kind: "ENV" | "LABEL" }
    >;
    expect(ins.pairs.map(([k, v]) => [k, expand(v, { B: "bee" })])).toEqual([
      ["A", "$B"],
      ["C", "bee x"],
      ["D", "$B"],
      ["E", 'say "hi"'],
    ]);
  });
  test.each<[string, [string, string][]]>([
    [
      'LABEL "com.example.vendor"="ACME Inc" version=1.0',
      [
        ["com.example.vendor", "ACME Inc"],
        ["version", "1.0"],
      ],
    ],
    ["LABEL description='multi word'", [["description", "multi word"]]],
    [
      'LABEL a="x" \\\n      b="y"',
      [
        ["a", "x"],
        ["b", "y"],
      ],
    ],
    ["label maintainer me@example.com", [["maintainer", "me@example.com"]]],
  ])("%s", (text, pairs) => {
    expect(one(text)).toMatchObject({ kind: "LABEL", pairs });
  });
  test("ARG with and without default, before FROM", () => {
    const ins = parseDockerfile('ARG VERSION=3.19\nARG FLAVOR\nFROM alpine:$VERSION\nARG X="a b"');
    expect(ins[0]).toEqual({
      kind: "ARG",
      line: 1,
      name: "VERSION",
      defaultValue: "3.19",
      raw: "ARG VERSION=3.19",
    });
    expect(ins[1]).toEqual({ kind: "ARG", line: 2, name: "FLAVOR", raw: "ARG FLAVOR" });
    expect(ins[3]).toMatchObject({ name: "X", defaultValue: "a b" });
  });
  test("ARG a=1 b gives one instruction per name", () => {
    const ins = parseDockerfile("FROM a\nARG a=1 b");
    expect(ins.slice(1).map((i) => i.kind === "ARG" && [i.name, i.defaultValue])).toEqual([
      ["a", "1"],
      ["b", undefined],
    ]);
  });
});

describe("single-value and list instructions", () => {
  test.each<[string, Partial<Instruction>]>([
    ["WORKDIR /app", { kind: "WORKDIR", value: "/app" }],
    ["WORKDIR /my dir", { kind: "WORKDIR", value: "/my dir" }],
    ["USER 1000:1000", { kind: "USER", value: "1000:1000" }],
    ["STOPSIGNAL SIGQUIT", { kind: "STOPSIGNAL", value: "SIGQUIT" }],
    ["EXPOSE 80 443/tcp 53/udp", { kind: "EXPOSE", values: ["80", "443/tcp", "53/udp"] }],
    ["VOLUME /data /logs", { kind: "VOLUME", values: ["/data", "/logs"] }],
    ['VOLUME ["/data", "/my logs"]', { kind: "VOLUME", values: ["/data", "/my logs"] }],
  ])("%s", (line, want) => {
    expect(one(line)).toMatchObject({ raw: line, ...want });
  });
});

describe("HEALTHCHECK", () => {
  test.each<[string, Partial<Instruction>]>([
    ["HEALTHCHECK NONE", { none: true, options: {} }],
    ["healthcheck none", { none: true }],
    [
      "HEALTHCHECK --interval=5s --timeout=3s --retries=3 CMD curl -f http://localhost/ || exit 1",
      {
        none: false,
        shell: true,
        command: ["curl -f http://localhost/ || exit 1"],
        options: { interval: "5s", timeout: "3s", retries: "3" },
      },
    ],
    [
      'HEALTHCHECK --start-period=1m cmd ["/bin/check", "-q"]',
      {
        none: false,
        shell: false,
        command: ["/bin/check", "-q"],
        options: { "start-period": "1m" },
      },
    ],
  ])("%s", (line, want) => {
    expect(one(line)).toMatchObject({ kind: "HEALTHCHECK", raw: line, ...want });
  });
});

describe("errors name the file and line", () => {
  test.each<[string, string]>([
    ["FROM a\n\nRUNN x", "Dockerfile:3: unknown instruction: RUNN"],
    ["FROM a\n# c\n\n\nCOPY onlyone", "Dockerfile:5: COPY requires at least two arguments"],
    ["RUN echo hi", "Dockerfile:1: no FROM before RUN"],
    ["ARG A\nENV B=1\nFROM a", "Dockerfile:2: no FROM before ENV"],
    [
      'FROM a\nCMD ["echo", "hi"',
      'Dockerfile:2: CMD: invalid or unterminated JSON array: ["echo", "hi"',
    ],
    ["", "Dockerfile: file with no instructions"],
    ["# only\n\n  # comments\n", "Dockerfile: file with no instructions"],
    ["FROM a b", "Dockerfile:1: FROM requires either one or three arguments"],
    ["FROM a\nWORKDIR", "Dockerfile:2: WORKDIR requires exactly one argument"],
    ["FROM a\nENV A", "Dockerfile:2: ENV must have two arguments"],
    [
      "FROM a\nENV A=1 B",
      'Dockerfile:2: Syntax error - can\'t find = in "B". Must be of the form: name=value',
    ],
    ["FROM a\nSHELL /bin/sh -c", "Dockerfile:2: SHELL requires the arguments to be in JSON form"],
    ["FROM a\nCOPY --fromm=x a b", "Dockerfile:2: unknown flag: --fromm for COPY"],
    [
      "FROM a\nRUN --mount=type=cache,target=/x true",
      "Dockerfile:2: unknown flag: --mount for RUN",
    ],
    ["FROM a\nHEALTHCHECK --interval=1s", 'Dockerfile:2: Unknown type "" in HEALTHCHECK (try CMD)'],
    ["FROM a\nHEALTHCHECK NONE x", "Dockerfile:2: HEALTHCHECK NONE takes no arguments"],
    ["FROM a\nRUN", "Dockerfile:2: RUN requires at least one argument"],
    ["# escape=x\nFROM a", "Dockerfile:1: invalid escape token 'x' does not match ` or \\"],
  ])("%j", (text, message) => fails(text, message));
  test("error line is the start of a continued instruction; file name is used", () => {
    expect(() => parseDockerfile("FROM a\nCOPY \\\n  \\\n  x", "app/Containerfile")).toThrow(
      "app/Containerfile:2: COPY requires at least two arguments",
    );
  });
});

describe("expand", () => {
  const vars = { A: "a", EMPTY: "", SP: "x y", PATH: "/bin" };
  test.each<[string, string]>([
    ["$A", "a"],
    ["${A}", "a"],
    ["pre-${A}-post", "pre-a-post"],
    ["$A$A", "aa"],
    ["$Ab", ""], // the name is "Ab", unset
    ["${A}b", "ab"],
    ["$UNSET", ""],
    ["${UNSET}", ""],
    ["${UNSET:-def}", "def"],
    ["${EMPTY:-def}", "def"],
    ["${EMPTY-def}", ""],
    ["${UNSET-def}", "def"],
    ["${A:-def}", "a"],
    ["${A:+alt}", "alt"],
    ["${EMPTY:+alt}", ""],
    ["${EMPTY+alt}", "alt"],
    ["${UNSET:+alt}", ""],
    ["${UNSET:-$A/x}", "a/x"],
    ["${UNSET:-${A:+nested}}", "nested"],
    ["\\$A", "$A"],
    ["\\${A}", "${A}"],
    ["a\\\\b", "a\\b"],
    ["'$A'", "$A"],
    ['"$A b"', "a b"],
    ['"\\$A"', "$A"],
    ['"a\\b"', "a\\b"],
    ["$", "$"],
    ["100$", "100$"],
    ["$ A", "$ A"],
    ["$SP", "x y"],
    ["/x:$PATH", "/x:/bin"],
    ["no vars here", "no vars here"],
    ["", ""],
  ])("%j", (text, want) => {
    expect(expand(text, vars)).toBe(want);
  });
  test("malformed words and :? are errors", () => {
    expect(() => expand("${A", vars)).toThrow(MiniboxError);
    expect(() => expand("${}", vars)).toThrow(/bad substitution/);
    expect(() => expand("'open", vars)).toThrow(MiniboxError);
    expect(() => expand("${UNSET:?must be set}", vars)).toThrow(/UNSET: must be set/);
    expect(expand("${A:?x}", vars)).toBe("a");
  });
});
