// The fault battery's one line per fault (test/faults/*.test.ts): what was done to the program and what
// happened — nothing crashed, which message the user saw, what was kept. CI logs show these lines.
export function reportFault(name: string, what: string): void {
  process.stdout.write(`FAULT ${name}: ${what}\n`);
}
