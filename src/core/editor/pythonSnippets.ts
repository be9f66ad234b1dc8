/**
 * Python that reads labels from the right folder level. `ImageFolder(root)` cannot: its classes are always
 * root's sub-folders. Pointing it at one fold would drop the other folds, so the honest fix is a small
 * dataset class over all folds — inserted once, above the call, in the code's own indentation.
 */
import { listNames } from '../audit/findings.js';
import type { Framework, DatasetFunction } from './pythonCalls.js';

export const TORCH_DATASET_CLASS = 'NestedLabelFolder';
export const KERAS_HELPER = 'nested_label_files';

export interface SnippetContext {
  function: DatasetFunction;
  framework: Framework;
  /** The depth-1 folders ImageFolder would use, and what they look like. */
  folders: string[];
  looksLike: string;
  labelDepth: number;
  classes: string[];
  /** A depth-1 folder to show in the "validate on one fold" example. */
  exampleGroup?: string;
}

function header(context: SnippetContext): string[] {
  const classes = context.classes.length > 0 ? ` (${listNames(context.classes)})` : '';
  return [
    `# leukemia-audit: ${context.function}(root) takes the folders directly under root as classes; here those are`,
    `# ${listNames(context.folders)} (${context.looksLike}), and the diagnoses${classes} are the folders at depth ${context.labelDepth}.`,
  ];
}

export function torchDatasetSnippet(context: SnippetContext): string[] {
  const group = context.exampleGroup ?? 'fold_2';
  return [
    ...header(context),
    `# ${TORCH_DATASET_CLASS} labels every image by that folder and keeps the folder above it in .groups, so a`,
    `# whole fold can be held out: torch.utils.data.Subset(dataset, [i for i, g in enumerate(dataset.groups) if g == '${group}']).`,
    'import os',
    'from PIL import Image',
    'from torch.utils.data import Dataset',
    '',
    '',
    'def _rgb_loader(path):',
    "    with open(path, 'rb') as file:",
    "        return Image.open(file).convert('RGB')",
    '',
    '',
    `class ${TORCH_DATASET_CLASS}(Dataset):`,
    '    """ImageFolder with the class taken from the folder at `label_depth` below `root` (1 = ImageFolder)."""',
    '',
    "    EXTENSIONS = ('.bmp', '.png', '.jpg', '.jpeg', '.tif', '.tiff', '.webp')",
    '',
    `    def __init__(self, root, transform=None, target_transform=None, loader=None, is_valid_file=None, label_depth=${context.labelDepth}):`,
    '        self.root, self.transform, self.target_transform = root, transform, target_transform',
    '        self.loader = loader or _rgb_loader',
    '        found = []',
    '        for folder, dirs, files in os.walk(root):',
    '            dirs.sort()',
    '            parts = os.path.relpath(folder, root).split(os.sep)',
    "            if parts == ['.'] or len(parts) < label_depth:",
    '                continue',
    '            for name in sorted(files):',
    '                path = os.path.join(folder, name)',
    '                if is_valid_file(path) if is_valid_file else name.lower().endswith(self.EXTENSIONS):',
    '                    found.append((path, parts[label_depth - 1], parts[max(label_depth - 2, 0)]))',
    '        self.classes = sorted({label for _, label, _ in found})',
    '        self.class_to_idx = {name: index for index, name in enumerate(self.classes)}',
    '        self.samples = [(path, self.class_to_idx[label]) for path, label, _ in found]',
    '        self.targets = [target for _, target in self.samples]',
    '        self.groups = [group for _, _, group in found]',
    '',
    '    def __len__(self):',
    '        return len(self.samples)',
    '',
    '    def __getitem__(self, index):',
    '        path, target = self.samples[index]',
    '        image = self.loader(path)',
    '        if self.transform is not None:',
    '            image = self.transform(image)',
    '        if self.target_transform is not None:',
    '            target = self.target_transform(target)',
    '        return image, target',
    '',
    '',
  ];
}

export function kerasHelperSnippet(context: SnippetContext): string[] {
  const usage =
    context.function === 'flow_from_directory'
      ? [
          '#   files, labels, class_names, groups = nested_label_files(directory)',
          "#   frame = pandas.DataFrame({'filename': files, 'class': [class_names[y] for y in labels]})",
          "#   generator.flow_from_dataframe(frame, x_col='filename', y_col='class')  # instead of flow_from_directory",
        ]
      : [
          '#   files, labels, class_names, groups = nested_label_files(directory)',
          '#   dataset = tf.data.Dataset.from_tensor_slices((files, labels)).map(lambda f, y: (tf.image.resize(',
          '#       tf.io.decode_image(tf.io.read_file(f), channels=3, expand_animations=False), (224, 224)), y))',
        ];
  return [
    ...header(context),
    `# ${KERAS_HELPER} lists the images with the label of that folder and the group (fold) above it; use it instead:`,
    ...usage,
    'import os',
    '',
    '',
    `def ${KERAS_HELPER}(root, label_depth=${context.labelDepth}, extensions=('.bmp', '.png', '.jpg', '.jpeg', '.tif', '.tiff', '.webp')):`,
    '    """Image paths under root, integer labels from the folder at label_depth, the class names, and each image\'s group."""',
    '    found = []',
    '    for folder, dirs, names in os.walk(root):',
    '        dirs.sort()',
    '        parts = os.path.relpath(folder, root).split(os.sep)',
    "        if parts == ['.'] or len(parts) < label_depth:",
    '            continue',
    '        found += [(os.path.join(folder, n), parts[label_depth - 1], parts[max(label_depth - 2, 0)])',
    '                  for n in sorted(names) if n.lower().endswith(extensions)]',
    '    class_names = sorted({label for _, label, _ in found})',
    '    return [f for f, _, _ in found], [class_names.index(label) for _, label, _ in found], class_names, [g for _, _, g in found]',
    '',
    '',
  ];
}

/** Indents a snippet for insertion at a statement's line; blank lines stay blank. */
export function indentLines(lines: string[], indentation: string): string {
  return lines.map((line) => (line === '' ? '' : indentation + line)).join('\n') + '\n';
}
