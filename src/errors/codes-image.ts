/** Error codes of the OS image build and of `outpost flash`. */
export const IMAGE_CODES = {
  OUTPOST_E_IMAGE_CONFIG: {
    area: 'image',
    summary: 'An image input (image/config.env, a target file, the package lock) is missing or malformed; the message names the file and line.',
    input: true,
  },
  OUTPOST_E_IMAGE_TARGET: { area: 'image', summary: 'The requested image target does not exist; the message lists the known targets.', input: true },
  OUTPOST_E_IMAGE_STAGE: {
    area: 'image',
    summary: 'A build stage failed (its script exited non-zero); details name the stage and its log file, whose tail is printed.',
    input: false,
  },
  OUTPOST_E_IMAGE_TOOL: { area: 'image', summary: 'A host tool the image build needs is not installed; the message names the Debian package.', input: false },
  OUTPOST_E_IMAGE_NOT_REPRODUCIBLE: {
    area: 'image',
    summary: 'Two builds from the same inputs gave different SHA256SUMS; the report names the differing files and where diffoscope wrote its findings.',
    input: false,
  },
  OUTPOST_E_FLASH_SOURCE: { area: 'flash', summary: 'The image to flash cannot be read or is not a disk image (.img or .img.zst).', input: true },
  OUTPOST_E_FLASH_TARGET_BUSY: {
    area: 'flash',
    summary: 'The flash target is mounted, or holds the running system (/, /boot…): refused before writing anything.',
    input: true,
  },
  OUTPOST_E_FLASH_TARGET: { area: 'flash', summary: 'The flash target is not a block device or regular file, is too small, or cannot be opened.', input: true },
  OUTPOST_E_FLASH_WRITE: { area: 'flash', summary: 'Writing the target failed part way; the target holds a partial image and must be flashed again.', input: false },
  OUTPOST_E_FLASH_VERIFY: {
    area: 'flash',
    summary: 'Reading the target back gave different bytes than the image (bad medium or a concurrent writer); details give the first differing offset.',
    input: false,
  },
} as const;
