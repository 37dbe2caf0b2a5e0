/** Seccomp: profiles (Docker's format), their resolution for one container, the BPF compiler. */
export { type CompiledFilter, compileFilter } from "./compile.js";
export { defaultProfile } from "./default-profile.js";
export {
  parseProfile,
  resolveProfile,
  type SeccompProfile,
  type SeccompTarget,
  type SpecSeccomp,
} from "./profile.js";
