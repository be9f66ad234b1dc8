// Placeholder until the CLI lands in this same change.
export {};
