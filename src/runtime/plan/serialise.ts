/**
 * The plan as text for native/minibox-exec: a "[section]" line, then one
 * step per line, its op and fields TAB-separated (fields from OPS).
 */
import { type Plan, type PlanStep, stepFields } from "./steps.js";

/** Escape one field: TAB, newline and backslash would otherwise end it or the line. */
function escapeField(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/\t/g, "\\t").replace(/\n/g, "\\n");
}

/**
 * The text, and the step on each line: the executor reports steps (--trace,
 * errors) by line number.
 */
export function serialisePlan(plan: Plan): { text: string; byLine: Map<number, PlanStep> } {
  const lines: string[] = [];
  const byLine = new Map<number, PlanStep>();
  const section = (name: string, steps: PlanStep[]) => {
    lines.push(`[${name}]`);
    for (const s of steps) {
      lines.push([s.op, ...stepFields(s)].map(escapeField).join("\t"));
      byLine.set(lines.length, s);
    }
  };
  section("setup", plan.setup);
  section("child", plan.child);
  section("parent", plan.parent);
  return { text: `${lines.join("\n")}\n`, byLine };
}
