/** What the checkpoint loader recognised; a type only, so run.json's readers (the webview too) can name it. */

/** What was recognised in a checkpoint: printed by the commands and recorded in run.json. */
export interface CheckpointInfo {
  /** The file read (for a run folder, its weights file). */
  file: string;
  sha256: string;
  format: 'pytorch' | 'pytorch-legacy' | 'safetensors';
  /** Where in the file the weights were: "state dict", "training checkpoint, key \"model_state_dict\"", "whole model __main__.LeukemiaNet". */
  container: string;
  /** Removed from every key ('' when the keys were torchvision's own). */
  prefix: string;
  /** `children`: the backbone's top-level modules were numbered (`nn.Sequential(*resnet.children())`). */
  naming: 'torchvision' | 'children';
  /** The classifier's name in the file (`fc`, `head.1`…); null for a backbone without one. */
  head: string | null;
  /** Outputs of the classifier; null without one. */
  numClasses: number | null;
  /** Output names, index = logit position, when the checkpoint or run says them. */
  classes: string[] | null;
  /** Where `classes` came from: `class_to_idx`, `classes`, `idx_to_class`, safetensors metadata, run.json. */
  classesSource: string | null;
  /** Entries of a checkpoint dict that were not the weights (epoch, optimizer_state_dict…): not decoded. */
  ignored: string[];
  /** safetensors metadata (ours carries `classes`, `imageSize`, `crop`). */
  metadata: Record<string, string>;
}
