import { describe, expect, it } from "vitest";
import { MiniboxError } from "../../src/errors.js";
import {
  familiarRepository,
  familiarString,
  formatReference,
  type ImageReference,
  looksLikeImageId,
  parseReference,
  repositoryName,
} from "../../src/image/reference.js";

const HEX64 = "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff";
const D1 = "dbcc1c35ac38df41fd2f5e4130b32ffdb93ebae8b3dbe638c23575912276fc9c";
const D2 = "86e0e091d0da6bde2456dbb48306f3956bbeb2eae1b5b9a43045843f69fe4aaa";
const ID64 = "1a3f5e7d9c1b3a5f7e9d1c3b5a7f9e1d3c5b7a9f1e3d5d7c9b1a3f5e7d9c1b3a";
const SHA512 = `sha512:${"f".repeat(128)}`;

interface ValidCase {
  input: string;
  domain: string;
  path: string;
  tag?: string;
  digest?: string;
  /** formatReference() result. */
  full: string;
  /** familiarString() result. */
  familiar: string;
}

// Expected values follow distribution/reference ParseNormalizedNamed + TagNameOnly
// (normalize_test.go, reference_test.go) and what `docker images` prints.
const valid: ValidCase[] = [
  // Docker Hub official images.
  {
    input: "alpine",
    domain: "docker.io",
    path: "library/alpine",
    tag: "latest",
    full: "docker.io/library/alpine:latest",
    familiar: "alpine:latest",
  },
  {
    input: "alpine:3.8",
    domain: "docker.io",
    path: "library/alpine",
    tag: "3.8",
    full: "docker.io/library/alpine:3.8",
    familiar: "alpine:3.8",
  },
  {
    input: "docker.io/alpine",
    domain: "docker.io",
    path: "library/alpine",
    tag: "latest",
    full: "docker.io/library/alpine:latest",
    familiar: "alpine:latest",
  },
  {
    input: "docker.io/library/alpine:edge",
    domain: "docker.io",
    path: "library/alpine",
    tag: "edge",
    full: "docker.io/library/alpine:edge",
    familiar: "alpine:edge",
  },
  {
    input: "index.docker.io/debian",
    domain: "docker.io",
    path: "library/debian",
    tag: "latest",
    full: "docker.io/library/debian:latest",
    familiar: "debian:latest",
  },
  {
    input: "library/ubuntu",
    domain: "docker.io",
    path: "library/ubuntu",
    tag: "latest",
    full: "docker.io/library/ubuntu:latest",
    familiar: "ubuntu:latest",
  },
  {
    input: "ubuntu-12.04-base",
    domain: "docker.io",
    path: "library/ubuntu-12.04-base",
    tag: "latest",
    full: "docker.io/library/ubuntu-12.04-base:latest",
    familiar: "ubuntu-12.04-base:latest",
  },
  {
    input: "lowercase:Uppercase",
    domain: "docker.io",
    path: "library/lowercase",
    tag: "Uppercase",
    full: "docker.io/library/lowercase:Uppercase",
    familiar: "lowercase:Uppercase",
  },
  // Docker Hub user images.
  {
    input: "index.docker.io/user/app",
    domain: "docker.io",
    path: "user/app",
    tag: "latest",
    full: "docker.io/user/app:latest",
    familiar: "user/app:latest",
  },
  {
    input: "dmcgowan/myapp:latest",
    domain: "docker.io",
    path: "dmcgowan/myapp",
    tag: "latest",
    full: "docker.io/dmcgowan/myapp:latest",
    familiar: "dmcgowan/myapp:latest",
  },
  {
    input: "other/library",
    domain: "docker.io",
    path: "other/library",
    tag: "latest",
    full: "docker.io/other/library:latest",
    familiar: "other/library:latest",
  },
  {
    input: "library/foo/bar",
    domain: "docker.io",
    path: "library/foo/bar",
    tag: "latest",
    full: "docker.io/library/foo/bar:latest",
    familiar: "library/foo/bar:latest",
  },
  {
    input: "docker.io/store/foo/bar",
    domain: "docker.io",
    path: "store/foo/bar",
    tag: "latest",
    full: "docker.io/store/foo/bar:latest",
    familiar: "store/foo/bar:latest",
  },
  {
    input: "test_com/foo",
    domain: "docker.io",
    path: "test_com/foo",
    tag: "latest",
    full: "docker.io/test_com/foo:latest",
    familiar: "test_com/foo:latest",
  },
  {
    input: `docker.io/${ID64}`,
    domain: "docker.io",
    path: `library/${ID64}`,
    tag: "latest",
    full: `docker.io/library/${ID64}:latest`,
    familiar: `${ID64}:latest`,
  },
  // Private registries.
  {
    input: "localhost:5000/x",
    domain: "localhost:5000",
    path: "x",
    tag: "latest",
    full: "localhost:5000/x:latest",
    familiar: "localhost:5000/x:latest",
  },
  {
    input: "localhost/x:1",
    domain: "localhost",
    path: "x",
    tag: "1",
    full: "localhost/x:1",
    familiar: "localhost/x:1",
  },
  {
    input: "127.0.0.1:5000/a/b:t",
    domain: "127.0.0.1:5000",
    path: "a/b",
    tag: "t",
    full: "127.0.0.1:5000/a/b:t",
    familiar: "127.0.0.1:5000/a/b:t",
  },
  {
    input: "192.168.1.1:5000/repo:5050",
    domain: "192.168.1.1:5000",
    path: "repo",
    tag: "5050",
    full: "192.168.1.1:5000/repo:5050",
    familiar: "192.168.1.1:5000/repo:5050",
  },
  {
    input: "ghcr.io/user/app:v1.2.3",
    domain: "ghcr.io",
    path: "user/app",
    tag: "v1.2.3",
    full: "ghcr.io/user/app:v1.2.3",
    familiar: "ghcr.io/user/app:v1.2.3",
  },
  {
    input: "example.com/privatebase",
    domain: "example.com",
    path: "privatebase",
    tag: "latest",
    full: "example.com/privatebase:latest",
    familiar: "example.com/privatebase:latest",
  },
  {
    input: "test-com:8080/foo",
    domain: "test-com:8080",
    path: "foo",
    tag: "latest",
    full: "test-com:8080/foo:latest",
    familiar: "test-com:8080/foo:latest",
  },
  {
    input: "sub-dom1.foo.com/bar/baz/quux:some-long-tag",
    domain: "sub-dom1.foo.com",
    path: "bar/baz/quux",
    tag: "some-long-tag",
    full: "sub-dom1.foo.com/bar/baz/quux:some-long-tag",
    familiar: "sub-dom1.foo.com/bar/baz/quux:some-long-tag",
  },
  {
    input: "b.gcr.io/test.example.com/my-app:test.example.com",
    domain: "b.gcr.io",
    path: "test.example.com/my-app",
    tag: "test.example.com",
    full: "b.gcr.io/test.example.com/my-app:test.example.com",
    familiar: "b.gcr.io/test.example.com/my-app:test.example.com",
  },
  {
    input: "xn--n3h.com:18080/foo",
    domain: "xn--n3h.com:18080",
    path: "foo",
    tag: "latest",
    full: "xn--n3h.com:18080/foo:latest",
    familiar: "xn--n3h.com:18080/foo:latest",
  },
  // Uppercase first component is taken as a registry host (current distribution rules).
  {
    input: "Foo/bar",
    domain: "Foo",
    path: "bar",
    tag: "latest",
    full: "Foo/bar:latest",
    familiar: "Foo/bar:latest",
  },
  {
    input: "DOCKER/docker",
    domain: "DOCKER",
    path: "docker",
    tag: "latest",
    full: "DOCKER/docker:latest",
    familiar: "DOCKER/docker:latest",
  },
  // IPv6 registries.
  {
    input: "[::1]:5000/x",
    domain: "[::1]:5000",
    path: "x",
    tag: "latest",
    full: "[::1]:5000/x:latest",
    familiar: "[::1]:5000/x:latest",
  },
  {
    input: "[2001:db8::1]/repo",
    domain: "[2001:db8::1]",
    path: "repo",
    tag: "latest",
    full: "[2001:db8::1]/repo:latest",
    familiar: "[2001:db8::1]/repo:latest",
  },
  {
    input: "[fc00:1:2:3:4:5:6:7]:5000/library/debian",
    domain: "[fc00:1:2:3:4:5:6:7]:5000",
    path: "library/debian",
    tag: "latest",
    full: "[fc00:1:2:3:4:5:6:7]:5000/library/debian:latest",
    familiar: "[fc00:1:2:3:4:5:6:7]:5000/library/debian:latest",
  },
  {
    input: `[2001:db8::1]:5000/repo:tag@sha256:${HEX64}`,
    domain: "[2001:db8::1]:5000",
    path: "repo",
    tag: "tag",
    digest: `sha256:${HEX64}`,
    full: `[2001:db8::1]:5000/repo:tag@sha256:${HEX64}`,
    familiar: `[2001:db8::1]:5000/repo:tag@sha256:${HEX64}`,
  },
  // Digests: no default tag is added; tag + digest keeps both.
  {
    input: `name@sha256:${D1}`,
    domain: "docker.io",
    path: "library/name",
    digest: `sha256:${D1}`,
    full: `docker.io/library/name@sha256:${D1}`,
    familiar: `name@sha256:${D1}`,
  },
  {
    input: `busybox:latest@sha256:${D2}`,
    domain: "docker.io",
    path: "library/busybox",
    tag: "latest",
    digest: `sha256:${D2}`,
    full: `docker.io/library/busybox:latest@sha256:${D2}`,
    familiar: `busybox:latest@sha256:${D2}`,
  },
  {
    input: `dmcgowan/myapp@sha256:${D1}`,
    domain: "docker.io",
    path: "dmcgowan/myapp",
    digest: `sha256:${D1}`,
    full: `docker.io/dmcgowan/myapp@sha256:${D1}`,
    familiar: `dmcgowan/myapp@sha256:${D1}`,
  },
  {
    input: `test:5000/repo@sha256:${HEX64}`,
    domain: "test:5000",
    path: "repo",
    digest: `sha256:${HEX64}`,
    full: `test:5000/repo@sha256:${HEX64}`,
    familiar: `test:5000/repo@sha256:${HEX64}`,
  },
  {
    input: `xn--7o8h.com/myimage:xn--7o8h.com@${SHA512}`,
    domain: "xn--7o8h.com",
    path: "myimage",
    tag: "xn--7o8h.com",
    digest: SHA512,
    full: `xn--7o8h.com/myimage:xn--7o8h.com@${SHA512}`,
    familiar: `xn--7o8h.com/myimage:xn--7o8h.com@${SHA512}`,
  },
  // Single component: always a Docker Hub name, even when it looks like a host.
  {
    input: "192.168.0.1:80",
    domain: "docker.io",
    path: "library/192.168.0.1",
    tag: "80",
    full: "docker.io/library/192.168.0.1:80",
    familiar: "192.168.0.1:80",
  },
  {
    input: "localhost:5000",
    domain: "docker.io",
    path: "library/localhost",
    tag: "5000",
    full: "docker.io/library/localhost:5000",
    familiar: "localhost:5000",
  },
  {
    input: "foo_bar.com:8080",
    domain: "docker.io",
    path: "library/foo_bar.com",
    tag: "8080",
    full: "docker.io/library/foo_bar.com:8080",
    familiar: "foo_bar.com:8080",
  },
  // Path component separators and lengths.
  {
    input: "docker---rules/docker",
    domain: "docker.io",
    path: "docker---rules/docker",
    tag: "latest",
    full: "docker.io/docker---rules/docker:latest",
    familiar: "docker---rules/docker:latest",
  },
  {
    input: "dock__er/d",
    domain: "docker.io",
    path: "dock__er/d",
    tag: "latest",
    full: "docker.io/dock__er/d:latest",
    familiar: "dock__er/d:latest",
  },
  {
    input: "thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev",
    domain: "docker.io",
    path: "library/thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev",
    tag: "latest",
    full: "docker.io/library/thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev:latest",
    familiar: "thisisthesongthatneverendsitgoesonandonandonthisisthesongthatnev:latest",
  },
  {
    // 63 hex chars is a name, not an ID.
    input: D1.slice(0, 63),
    domain: "docker.io",
    path: `library/${D1.slice(0, 63)}`,
    tag: "latest",
    full: `docker.io/library/${D1.slice(0, 63)}:latest`,
    familiar: `${D1.slice(0, 63)}:latest`,
  },
  {
    // Path of exactly 255 characters with a long tag is fine.
    input: `${"a/".repeat(127)}a:${"t".repeat(128)}`,
    domain: "docker.io",
    path: `${"a/".repeat(127)}a`,
    tag: "t".repeat(128),
    full: `docker.io/${"a/".repeat(127)}a:${"t".repeat(128)}`,
    familiar: `${"a/".repeat(127)}a:${"t".repeat(128)}`,
  },
];

describe("parseReference: valid references", () => {
  it.each(valid)("$input", (c) => {
    const ref = parseReference(c.input);
    const expected: ImageReference = { domain: c.domain, path: c.path };
    if (c.tag !== undefined) expected.tag = c.tag;
    if (c.digest !== undefined) expected.digest = c.digest;
    expect(ref).toEqual(expected);
    expect(formatReference(ref)).toBe(c.full);
    expect(repositoryName(ref)).toBe(`${c.domain}/${c.path}`);
    expect(familiarString(ref)).toBe(c.familiar);
    // Both printed forms parse back to the same reference.
    expect(parseReference(c.full)).toEqual(expected);
    expect(parseReference(c.familiar)).toEqual(expected);
  });

  // TestParseRepositoryInfo: familiar, full and ambiguous spellings agree.
  it.each([
    ["fooo/bar", ["docker.io/fooo/bar", "index.docker.io/fooo/bar"], "docker.io", "fooo/bar"],
    ["ubuntu", ["docker.io/library/ubuntu", "library/ubuntu"], "docker.io", "library/ubuntu"],
    ["foo", ["docker.io/library/foo", "docker.io/foo"], "docker.io", "library/foo"],
    ["127.0.0.1:8000/private/moonbase", [], "127.0.0.1:8000", "private/moonbase"],
    ["example.com:8000/privatebasee", [], "example.com:8000", "privatebasee"],
    ["FOO/bar", [], "FOO", "bar"],
  ] as const)("%s and its spellings", (familiar, others, domain, path) => {
    for (const s of [familiar, ...others]) {
      const ref = parseReference(s);
      expect(ref.domain).toBe(domain);
      expect(ref.path).toBe(path);
      expect(familiarRepository(ref)).toBe(familiar);
    }
  });
});

describe("parseReference: invalid references", () => {
  const invalid: [input: string, message?: RegExp][] = [
    ["", /image name is empty/],
    ["alpine:", /tag is empty/],
    ["alpine@", /digest is empty/],
    [":justtag", /repository name is missing/],
    [`@sha256:${HEX64}`, /repository name is missing/],
    ["Alpine", /repository name \(library\/Alpine\) must be lowercase/],
    ["Uppercase:tag", /must be lowercase/],
    ["docker/Docker", /repository name \(docker\/Docker\) must be lowercase/],
    ["docker.io/docker/Docker", /must be lowercase/],
    ["test:5000/Uppercase/lowercase:tag", /must be lowercase/],
    [ID64, /64-character hexadecimal/],
    [`${"a/".repeat(128)}a:tag`, /must not be more than 255 characters/],
    ["a".repeat(256), /must not be more than 255 characters/],
    ["https://github.com/docker/docker", /remove the "https:\/\/" prefix/],
    ["-docker", /component "-docker" is invalid/],
    ["-docker/docker", /component "-docker" is invalid/],
    ["docker-/docker", /component "docker-" is invalid/],
    ["-docker-/docker", /component/],
    ["-docker.io/docker/docker", /registry host "-docker.io" is invalid/],
    ["docker///docker", /empty path component/],
    ["docker.io/docker///docker", /empty path component/],
    ["docker/", /empty path component/],
    ["localhost:5000/", /repository name is missing after registry host "localhost:5000"/],
    ["localhost:5000/:tag", /repository name is missing/],
    ["____/____", /component "____" is invalid/],
    ["_docker/_docker", /component "_docker" is invalid/],
    // A first component with "." or ":" is a registry host, so these fail as hosts.
    ["dock..er/docker", /registry host "dock..er" is invalid/],
    ["dock_.er/docker", /registry host/],
    ["dock-.er/docker", /registry host/],
    ["dock..er", /component "dock..er" is invalid/],
    ["x/dock-.er", /component "dock-.er" is invalid/],
    ["aa/asdf$$^/aa", /component "asdf\$\$\^" is invalid/],
    ["alpine latest", /component "alpine latest" is invalid/],
    ["[fc00::1]", /IPv6 registry address but no repository; write it as "\[fc00::1\]\/name"/],
    ["[fc00::1]:5000", /"\[fc00::1\]:5000\/name"/],
    ["[2001:db8::1]:tag", /IPv6 registry address/],
    ["fc00::1:5000/debian", /registry host "fc00::1:5000" is invalid/],
    ["[fe80::1%eth0]:5000/debian", /registry host/],
    ["[fe80::1%@invalidzone]:5000/repo", /invalid reference format/],
    ["[2001:db8:3:4::192.0.2.33]:5000/debian", /registry host/],
    ["localhost:port/x", /registry host "localhost:port" is invalid/],
    ["foo_bar.com/x", /registry host "foo_bar.com" is invalid/],
    ["alpine:-tag", /tag "-tag" is invalid/],
    ["alpine:.tag", /tag ".tag" is invalid/],
    ["alpine:a/b", /registry host "alpine:a" is invalid/],
    ["x/alpine:a/b", /component "alpine:a" is invalid/],
    [`alpine:${"t".repeat(129)}`, /tag is 129 characters long; tags may be at most 128/],
    ["alpine:1:2", /tag "1:2" is invalid/],
    ["repo@sha256:ffffffffffffffffffffffffffffffffff", /sha256 needs 64 hex characters, got 34/],
    [`validname@invaliddigest:${HEX64}`, /digest algorithm "invaliddigest" is not supported/],
    [`alpine@sha256:${HEX64.toUpperCase()}`, /lowercase hex/],
    [`alpine@sha256:${"z".repeat(64)}`, /digest "sha256:z+" is invalid/],
    ["alpine@latest", /digest "latest" is invalid/],
    [`alpine@sha256:${HEX64}@sha256:${HEX64}`, /digest .* is invalid/],
    [`alpine@sha256:${HEX64}:tag`, /invalid reference format/],
  ];

  it.each(invalid)("%j", (input, message) => {
    let caught: unknown;
    try {
      parseReference(input);
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(MiniboxError);
    const msg = (caught as MiniboxError).message;
    expect(msg).toMatch(/^invalid reference format: /);
    expect(msg).not.toContain("\n");
    expect(msg.length).toBeLessThan(300);
    if (message) expect(msg).toMatch(message);
  });

  it("rejects pathological input quickly", () => {
    const inputs = [
      `${"a".repeat(5000)}!`,
      `${"a-".repeat(5000)}!`,
      `${"a.".repeat(5000)}/x`,
      `${"a-a.".repeat(5000)}:/x`,
      `x/${"a__a".repeat(5000)}_`,
    ];
    const start = performance.now();
    for (const s of inputs) expect(() => parseReference(s)).toThrow(/invalid reference format/);
    expect(performance.now() - start).toBeLessThan(1000);
  });
});

describe("formatting hand-built references", () => {
  it("omits tag and digest when absent", () => {
    const ref: ImageReference = { domain: "docker.io", path: "library/alpine" };
    expect(formatReference(ref)).toBe("docker.io/library/alpine");
    expect(familiarString(ref)).toBe("alpine");
    expect(familiarRepository(ref)).toBe("alpine");
    expect(repositoryName(ref)).toBe("docker.io/library/alpine");
  });

  it("keeps both tag and digest", () => {
    const ref: ImageReference = {
      domain: "docker.io",
      path: "library/alpine",
      tag: "3.8",
      digest: `sha256:${D1}`,
    };
    expect(formatReference(ref)).toBe(`docker.io/library/alpine:3.8@sha256:${D1}`);
    expect(familiarString(ref)).toBe(`alpine:3.8@sha256:${D1}`);
  });

  it("familiar names keep non-Hub registries", () => {
    expect(familiarRepository(parseReference("localhost:5000/x"))).toBe("localhost:5000/x");
    expect(familiarRepository(parseReference("user/app:1"))).toBe("user/app");
    expect(familiarRepository(parseReference("ghcr.io/library/x"))).toBe("ghcr.io/library/x");
  });
});

describe("looksLikeImageId", () => {
  it.each([ID64, D1, D1.slice(0, 12), "3f2a9c1d0b7e", `sha256:${D1}`, "sha256:3f2a"])(
    "%s is an image ID",
    (s) => {
      expect(looksLikeImageId(s)).toBe(true);
    },
  );

  it.each([
    "alpine",
    "abc",
    "dead",
    D1.slice(0, 11),
    `${D1}0`,
    D1.toUpperCase(),
    "sha256:",
    `sha256:${D1}0`,
    `sha512:${D1}`,
    `alpine@sha256:${D1}`,
    "3f2a9c1d0b7g",
    "",
  ])("%s is not an image ID", (s) => {
    expect(looksLikeImageId(s)).toBe(false);
  });

  it("a full 64-hex ID is never accepted as a name", () => {
    expect(looksLikeImageId(ID64)).toBe(true);
    expect(() => parseReference(ID64)).toThrow(MiniboxError);
  });
});
