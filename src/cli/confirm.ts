/**
 * Docker's y/N confirmation (its prompt.Confirm): the question and " [y/N] "
 * on stdout, one line read from stdin; only "y" or "Y" is yes. Stdin at its
 * end (a script, `</dev/null`) answers no, so nothing is removed unasked.
 */
import { createInterface } from "node:readline";

export async function confirm(question: string): Promise<boolean> {
  process.stdout.write(`${question} [y/N] `);
  const rl = createInterface({ input: process.stdin, terminal: false });
  const answer = await new Promise<string>((resolve) => {
    rl.once("line", resolve);
    rl.once("close", () => resolve(""));
  });
  rl.close();
  return answer.trim().toLowerCase() === "y";
}
