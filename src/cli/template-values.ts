/** How Go's text/template prints and tests values, for the template engine. */

/** `{{.X}}` output: maps as map[k:v], slices as [a b], nil as <nil>, missing as <no value>. */
export function goString(value: unknown): string {
  if (value === undefined) return "<no value>";
  if (value === null) return "<nil>";
  if (Array.isArray(value)) return `[${value.map(goString).join(" ")}]`;
  if (typeof value === "function") return "<func>";
  if (typeof value === "object") {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => typeof v !== "function")
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `map[${entries.map(([k, v]) => `${k}:${goString(v)}`).join(" ")}]`;
  }
  return String(value);
}

/** Go's truth: false, 0, nil and empty strings, slices and maps are false. */
export function isTrue(value: unknown): boolean {
  if (value === null || value === undefined || value === false || value === 0 || value === "")
    return false;
  if (Array.isArray(value)) return value.length > 0;
  if (typeof value === "object") return Object.keys(value).length > 0;
  return true;
}

/** fmt.Sprintf for the verbs templates use: %s %v %q %d %f %x %t %%, with flags, width and precision. */
export function sprintf(format: string, args: unknown[]): string {
  let next = 0;
  return format.replace(
    /%([-+ 0#]*)(\d+)?(?:\.(\d+))?([a-zA-Z%])/g,
    (whole, flags: string, width, prec, verb: string) => {
      if (verb === "%") return "%";
      if (next >= args.length) return `%!${verb}(MISSING)`;
      const arg = args[next++];
      let text: string;
      switch (verb) {
        case "s":
        case "v":
          text = goString(arg);
          if (prec !== undefined && verb === "s") text = text.slice(0, Number(prec));
          break;
        case "q":
          text = JSON.stringify(goString(arg));
          break;
        case "d":
          text =
            typeof arg === "number"
              ? String(Math.trunc(arg))
              : `%!d(${typeof arg}=${goString(arg)})`;
          break;
        case "f":
          text =
            typeof arg === "number"
              ? arg.toFixed(prec === undefined ? 6 : Number(prec))
              : `%!f(${goString(arg)})`;
          break;
        case "x":
          text =
            typeof arg === "number" ? arg.toString(16) : Buffer.from(goString(arg)).toString("hex");
          break;
        case "t":
          text = String(Boolean(arg));
          break;
        default:
          return whole;
      }
      const w = width === undefined ? 0 : Number(width);
      if (flags.includes("-")) return text.padEnd(w);
      return text.padStart(w, flags.includes("0") && verb !== "s" ? "0" : " ");
    },
  );
}
