// A sandbox with the fixtures' base image pulled, for test files that run
// one shell script per container and look at what it printed (the device
// and security-limit tests): `sh(script, flags)` is
// `minibox run --rm --network none FLAGS base sh -c SCRIPT`.
import { afterAll, beforeAll, expect } from "vitest";
import { type Result, type Sandbox, sandbox } from "./minibox.js";
import { testEnv } from "./testenv.js";

export interface BaseBox {
  /** The base image's reference in the anonymous test registry. */
  image: string;
  /** The sandbox (only inside tests: it is made in beforeAll). */
  readonly box: Sandbox;
  /** Run `sh -c script` in a new --rm container without a network. */
  sh(script: string, flags?: string[]): Promise<Result>;
}

/** Call at the top of a test file: the sandbox is made and the image pulled before its tests, removed after. */
export function baseBox(): BaseBox {
  const image = `${testEnv().registries.anon}/fixtures/base`;
  let made: Sandbox | undefined;
  beforeAll(async () => {
    made = sandbox();
    const r = await made.run(["pull", "-q", image]);
    expect(r.code, r.stderr).toBe(0);
  });
  afterAll(() => made?.cleanup());
  const box = (): Sandbox => {
    if (!made) throw new Error("baseBox: the sandbox exists only while the file's tests run");
    return made;
  };
  return {
    image,
    get box() {
      return box();
    },
    sh: (script, flags = []) =>
      box().run(["run", "--rm", "--network", "none", ...flags, image, "sh", "-c", script]),
  };
}
