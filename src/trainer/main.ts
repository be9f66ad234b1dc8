// The trainer child process arrives with the engine issue.
export {};
