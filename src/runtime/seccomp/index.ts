/** PLACEHOLDER for sec-bpf's module (replaced at merge). */
export { type CompiledFilter, compileFilter } from "./compile.js";
export {
  defaultProfile,
  parseProfile,
  resolveProfile,
  type SeccompProfile,
  type SpecSeccomp,
} from "./profile.js";
