/** Thrown when a run stops because it was asked to; the run ends `cancelled`, not `failed`. */
export class TrainingCancelled extends Error {
  constructor() {
    super('Training was cancelled');
  }
}
