// Pure pieces of the image side: digests, manifests, platform choice, auth
// challenges, endpoints, and the output formats users read.
import { describe, expect, test } from "vitest";
import { humanDuration, humanSize, table } from "../../src/cli/format.js";
import { renderTemplate } from "../../src/cli/template.js";
import { chainIds, sha256 } from "../../src/image/digest.js";
import { MediaType, parseManifest, selectPlatform } from "../../src/image/manifest.js";
import { parseChallenge, resolveEndpoints } from "../../src/image/registry.js";

const d = (c: string) => `sha256:${c.repeat(64)}`;

describe("chain IDs", () => {
  test("follow the OCI definition", () => {
    const [a, b] = [d("a"), d("b")];
    expect(chainIds([a, b])).toEqual([a, sha256(`${a} ${b}`)]);
  });
});

describe("manifests", () => {
  test("media type from Content-Type when the body has none (umoci)", () => {
    const body = Buffer.from(
      JSON.stringify({ schemaVersion: 2, config: { digest: d("c"), size: 1 }, layers: [] }),
    );
    expect(parseManifest(body, MediaType.ociManifest).kind).toBe("manifest");
    expect(parseManifest(body, "application/json").mediaType).toBe(MediaType.ociManifest);
  });
  test("schema 1 and garbage are refused with a clear message", () => {
    expect(() => parseManifest(Buffer.from("{}"), MediaType.dockerSchema1Signed)).toThrow(
      /schema 1/,
    );
    expect(() => parseManifest(Buffer.from("nope"), undefined)).toThrow(/not valid JSON/);
    const bad = Buffer.from(
      JSON.stringify({ config: { digest: "sha256:zz", size: 1 }, layers: [] }),
    );
    expect(() => parseManifest(bad, MediaType.ociManifest)).toThrow(/invalid config digest/);
  });
  test("platform selection: os/arch must match; variants only when both name one", () => {
    const index = {
      kind: "index" as const,
      mediaType: MediaType.ociIndex,
      manifests: [
        {
          mediaType: "",
          digest: d("1"),
          size: 1,
          platform: { os: "unknown", architecture: "unknown" },
        },
        {
          mediaType: "",
          digest: d("2"),
          size: 1,
          platform: { os: "linux", architecture: "arm", variant: "v6" },
        },
        {
          mediaType: "",
          digest: d("3"),
          size: 1,
          platform: { os: "linux", architecture: "arm", variant: "v7" },
        },
        {
          mediaType: "",
          digest: d("4"),
          size: 1,
          platform: { os: "linux", architecture: "arm64" },
        },
        {
          mediaType: "",
          digest: d("5"),
          size: 1,
          platform: { os: "linux", architecture: "amd64" },
        },
      ],
    };
    expect(selectPlatform(index, { os: "linux", architecture: "amd64" }).digest).toBe(d("5"));
    expect(selectPlatform(index, { os: "linux", architecture: "arm", variant: "v7" }).digest).toBe(
      d("3"),
    );
    expect(
      selectPlatform(index, { os: "linux", architecture: "arm64", variant: "v8" }).digest,
    ).toBe(d("4"));
    expect(() => selectPlatform(index, { os: "linux", architecture: "s390x" })).toThrow(
      /no image for platform linux\/s390x.*offers: linux\/arm\/v6, linux\/arm\/v7, linux\/arm64, linux\/amd64/,
    );
  });
});

describe("registry protocol details", () => {
  test("WWW-Authenticate challenges", () => {
    expect(
      parseChallenge(
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull"',
      ),
    ).toEqual({
      scheme: "bearer",
      params: {
        realm: "https://auth.docker.io/token",
        service: "registry.docker.io",
        scope: "repository:library/alpine:pull",
      },
    });
    expect(parseChallenge('Basic realm="minibox"')).toEqual({
      scheme: "basic",
      params: { realm: "minibox" },
    });
  });
  test("endpoints: HTTP for loopback and insecure registries, HTTPS otherwise, mirror first", () => {
    expect(resolveEndpoints("127.0.0.1:5000")[0]?.baseUrl).toBe("http://127.0.0.1:5000");
    expect(resolveEndpoints("localhost:5000")[0]?.baseUrl).toBe("http://localhost:5000");
    expect(resolveEndpoints("[::1]:5000")[0]?.baseUrl).toBe("http://[::1]:5000");
    expect(resolveEndpoints("ghcr.io")[0]?.baseUrl).toBe("https://ghcr.io");
    expect(
      resolveEndpoints("reg.lan:5000", { insecureRegistries: ["reg.lan:5000"] })[0]?.baseUrl,
    ).toBe("http://reg.lan:5000");
    const hub = resolveEndpoints("docker.io", { registryMirror: "https://mirror.example/" });
    expect(hub.map((e) => e.baseUrl)).toEqual([
      "https://mirror.example",
      "https://registry-1.docker.io",
    ]);
    expect(hub[0]?.mirror).toBe(true);
  });
});

describe("output formats", () => {
  test("sizes like Docker's (decimal, 4 significant digits)", () => {
    expect(humanSize(0)).toBe("0B");
    expect(humanSize(3072)).toBe("3.072kB");
    expect(humanSize(5_590_000)).toBe("5.59MB");
    expect(humanSize(1_234_567_890)).toBe("1.235GB");
  });
  test("durations like Docker's", () => {
    expect(humanDuration(500)).toBe("Less than a second");
    expect(humanDuration(3000)).toBe("3 seconds");
    expect(humanDuration(61_000)).toBe("About a minute");
    expect(humanDuration(3_600_000)).toBe("About an hour");
    expect(humanDuration(3 * 86_400_000)).toBe("3 days");
  });
  test("tables pad columns by three spaces", () => {
    expect(table(["A", "BB"], [["xxxx", "y"]])).toBe("A      BB\nxxxx   y");
  });
  test("--format templates", () => {
    const data = { Id: "x", Config: { Cmd: ["sh", "-c"], Labels: { "a.b": "c" } }, Size: 3 };
    expect(renderTemplate("{{.Id}} {{.Size}}", data)).toBe("x 3");
    expect(renderTemplate("{{json .Config.Cmd}}", data)).toBe('["sh","-c"]');
    expect(renderTemplate("{{.Config.Cmd}}", data)).toBe("[sh -c]");
    expect(renderTemplate('{{index .Config.Labels "a.b"}}', data)).toBe("c");
    expect(() => renderTemplate("{{.Nope}}", data)).toThrow(/can't evaluate field Nope/);
  });
});
