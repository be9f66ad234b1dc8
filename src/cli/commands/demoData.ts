import { resolve } from 'node:path';
import { generateDemoDataset } from '../../core/demo/generate.js';
import { UsageError, integerOption, parseCommandArgs } from '../usage.js';

const HELP = `Usage: leukemia-audit demo-data <dir> [--seed N] [--image-size S] [--images-per-fold N] [--overwrite] [--json]

Writes <dir>/C-NMC_Leukemia: a synthetic dataset with the folder layout and file naming of Kaggle's
C-NMC 2019 "leukemia-classification" (training_data/fold_k/{all,hem}, validation_data with a labels CSV).

  --seed N              random seed (default 1)
  --image-size S        side of the square BMP images, 16–450 (default 64)
  --images-per-fold N   training images per fold (default 200)
  --leak-subjects N     plant N subjects in two folds (for testing the audit)
  --duplicates N        plant N duplicated images across folds/classes
  --corrupt-files N     plant N unreadable .bmp files
  --overwrite           replace an existing C-NMC_Leukemia folder
  --json                print the manifest (every file, subject, label, planted defect) as JSON`;

export async function demoDataCommand(argv: string[]): Promise<number> {
  const parsed = parseCommandArgs(
    argv,
    {
      seed: { type: 'string' },
      'image-size': { type: 'string' },
      'images-per-fold': { type: 'string' },
      'leak-subjects': { type: 'string' },
      duplicates: { type: 'string' },
      'corrupt-files': { type: 'string' },
      overwrite: { type: 'boolean' },
      json: { type: 'boolean' },
    },
    HELP,
  );
  if (!parsed) return 0;
  const { values, positionals } = parsed;
  if (positionals.length !== 1) throw new UsageError('demo-data takes exactly one output folder');
  const manifest = await generateDemoDataset(resolve(positionals[0]), {
    seed: integerOption(values.seed, 'seed', 1),
    imageSize: integerOption(values['image-size'], 'image-size', 64, 16, 450),
    imagesPerFold: integerOption(values['images-per-fold'], 'images-per-fold', 200, 1),
    leakSubjects: integerOption(values['leak-subjects'], 'leak-subjects', 0),
    duplicates: integerOption(values.duplicates, 'duplicates', 0),
    corruptFiles: integerOption(values['corrupt-files'], 'corrupt-files', 0),
    overwrite: values.overwrite ?? false,
  }).catch((error: unknown) => {
    // The generator's option checks (e.g. too few images per fold for two classes) are usage errors here.
    throw error instanceof RangeError ? new UsageError(error.message) : error;
  });
  if (values.json) process.stdout.write(JSON.stringify(manifest, null, 2) + '\n');
  else process.stderr.write(`Wrote ${manifest.images.length} images to ${manifest.root}\n`);
  return 0;
}
