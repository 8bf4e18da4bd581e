import { Type, type Static } from '@sinclair/typebox';
import { TaggedUnion } from '../hal/schema-common.js';

/** Configuration of the A/B updater (`ota:`). Paths are relative to the main configuration file. */

const Bootname = Type.String({ pattern: '^[A-Za-z0-9_-]{1,32}$', description: 'Slot name as the bootloader knows it (RAUC `bootname`): `A`, `B`.' });

export const OtaSlot = Type.Object(
  {
    bootname: Bootname,
    device: Type.Optional(Type.String({ minLength: 1, description: 'Device of the `rootfs` image (shorthand for `devices.rootfs`): a partition (`/dev/disk/by-partlabel/rootA`) or a file.' })),
    devices: Type.Optional(
      Type.Record(Type.String({ pattern: '^[a-z][a-z0-9_-]*$' }), Type.String({ minLength: 1 }), {
        description: 'Device per slot class (`rootfs`, `bootfs`…): a bundle image for class X is written to `devices.X` of the target slot.',
      }),
    ),
  },
  { additionalProperties: false },
);

const HookSet = Type.Object(
  {
    enter: Type.Optional(Type.Array(Type.String(), { minItems: 1, description: 'Command run when the state is entered (argv).' })),
    leave: Type.Optional(Type.Array(Type.String(), { minItems: 1, description: 'Command run before the state is left.' })),
    error: Type.Optional(Type.Array(Type.String(), { minItems: 1, description: 'Command run when the state fails.' })),
  },
  { additionalProperties: false },
);

const STATES = ['idle', 'downloading', 'verifying', 'installing', 'reboot-pending', 'trial-boot', 'committed', 'rolled-back'] as const;

export const OtaBootloader = TaggedUnion(
  'type',
  [
    Type.Object(
      {
        type: Type.Literal('uboot'),
        fwEnvConfig: Type.String({ default: '/etc/fw_env.config', description: 'fw_env.config naming the (redundant) environment copies, as fw_printenv uses it.' }),
        attempts: Type.Integer({ minimum: 1, maximum: 255, default: 3, description: 'BOOT_<x>_LEFT written by mark-good (RAUC `boot-attempts`).' }),
        primaryAttempts: Type.Integer({ minimum: 1, maximum: 255, default: 3, description: 'BOOT_<x>_LEFT written when a slot becomes primary: the trial boots before fallback.' }),
      },
      { additionalProperties: false, description: "U-Boot environment in RAUC's convention (BOOT_ORDER, BOOT_<x>_LEFT in hex)." },
    ),
    Type.Object(
      {
        type: Type.Literal('grub'),
        grubenv: Type.String({ minLength: 1, description: 'The 1024-byte grubenv the GRUB script loads (on the ESP).' }),
      },
      { additionalProperties: false, description: "GRUB environment in RAUC's convention (ORDER, <x>_OK, <x>_TRY): one trial boot per slot." },
    ),
    Type.Object(
      {
        type: Type.Literal('tryboot'),
        autoboot: Type.String({ default: '/boot/firmware/autoboot.txt', description: 'autoboot.txt on the first FAT partition.' }),
        deviceTree: Type.String({ default: '/proc/device-tree/chosen/bootloader', description: 'Where the firmware reports `partition` and `tryboot`.' }),
        partitions: Type.Record(Type.String(), Type.Integer({ minimum: 1, maximum: 127 }), { description: 'Bootname → boot partition number, e.g. `{A: 2, B: 3}`.' }),
      },
      { additionalProperties: false, description: 'Raspberry Pi firmware tryboot (autoboot.txt, one-shot `reboot "0 tryboot"`).' },
    ),
    Type.Object(
      {
        type: Type.Literal('custom'),
        command: Type.Array(Type.String(), { minItems: 1, description: 'RAUC custom-backend executable (argv); verbs are appended.' }),
        getCurrent: Type.Boolean({ default: false, description: 'The backend implements `get-current`; otherwise the kernel command line is used.' }),
        timeoutSec: Type.Integer({ minimum: 1, maximum: 600, default: 30 }),
      },
      { additionalProperties: false, description: "Any bootloader through RAUC's custom-backend contract." },
    ),
  ],
  { description: 'How the next boot slot is chosen and boot attempts are counted.' },
);

export const OtaConfig = Type.Object(
  {
    compatible: Type.String({ minLength: 1, description: 'Must equal the bundle manifest `compatible` (RAUC `[system] compatible`).' }),
    keyring: Type.String({ minLength: 1, description: 'PEM file with the CA certificate(s) bundle signers must chain to.' }),
    slots: Type.Array(OtaSlot, { minItems: 2, maxItems: 2, description: 'The two A/B slots.' }),
    bootloader: OtaBootloader,
    dataDir: Type.Optional(Type.String({ minLength: 1, description: 'Update state and downloads; defaults to `<gateway.dataDir>/ota` (keep it on the data partition).' })),
    cmdline: Type.String({ default: '/proc/cmdline', description: 'Kernel command line: `rauc.slot=<bootname>` (or `root=`) tells the booted slot.' }),
    bootIdFile: Type.String({ default: '/proc/sys/kernel/random/boot_id', description: 'Changes on every boot; how the flow tells a reboot happened.' }),
    minVersion: Type.Optional(Type.String({ description: 'Bundles with a lower SemVer `version` are refused.' })),
    securityVersion: Type.Object(
      {
        store: Type.Union([Type.Literal('file'), Type.Literal('tpm')], { default: 'file', description: '`file`: a counter file; `tpm`: a TPM NV counter (needs the TPM wiring).' }),
        file: Type.Optional(Type.String({ description: 'Counter file for `store: file`; defaults to `<dataDir>/security-version`.' })),
        tpm: Type.String({ default: 'auto', description: 'TPM for `store: tpm` (`auto`: /dev/tpmrm0, else /dev/tpm0); the NV counter and its start value come from `<gateway.dataDir>/identity/identity.json`.' }),
      },
      { additionalProperties: false, default: {}, description: 'Anti-rollback floor: bundles with `[meta.outpost] security-version` below it are refused; advanced after commit.' },
    ),
    markGood: Type.Object(
      {
        healthUrl: Type.String({ default: 'http://127.0.0.1:8480/healthz', description: "The runtime's health endpoint." }),
        requireUplink: Type.Boolean({ default: false, description: 'Also require the uplink check to pass before committing a trial boot.' }),
        timeoutSec: Type.Integer({ minimum: 1, maximum: 3600, default: 120, description: 'How long a trial boot may take to become healthy.' }),
        intervalSec: Type.Integer({ minimum: 1, maximum: 60, default: 3 }),
        committedBoots: Type.Union([Type.Literal('mark'), Type.Literal('health')], {
          default: 'mark',
          description: '`mark`: normal boots refill the counter as soon as mark-good runs; `health`: only once healthy.',
        }),
        trialFailure: Type.Union([Type.Literal('reboot'), Type.Literal('wait')], {
          default: 'reboot',
          description: '`reboot`: an unhealthy trial boot reboots so the bootloader counts the attempt; `wait`: leave it to the watchdog.',
        }),
        lateFallbackRecoveries: Type.Integer({
          minimum: 0,
          maximum: 5,
          default: 1,
          description: 'After commit, a boot of the old slot (power cuts before mark-good) re-arms the committed slot this many times before accepting the fallback.',
        }),
      },
      { additionalProperties: false, default: {} },
    ),
    hooks: Type.Object(Object.fromEntries(STATES.map((s) => [s, Type.Optional(HookSet)])), {
      additionalProperties: false,
      default: {},
      description: 'Commands per state. Exit 0 continues, 75 (EX_TEMPFAIL) asks to retry later, anything else fails the state.',
    }),
    hookTimeoutSec: Type.Integer({ minimum: 1, maximum: 3600, default: 300 }),
    lockDir: Type.String({ default: '/run/outpost/ota-locks', description: 'Applications hold the update lock with a file here naming a live PID.' }),
    rebootCommand: Type.Array(Type.String(), { minItems: 1, default: ['systemctl', 'reboot'], description: 'argv of the reboot; a trial argument (`0 tryboot`) is appended when needed.' }),
    maxTransitions: Type.Integer({ minimum: 8, maximum: 1000, default: 28, description: 'Loop breaker: transitions allowed for one update.' }),
    maxResumes: Type.Integer({ minimum: 1, maximum: 100, default: 5, description: 'Loop breaker: restarts of one state after crashes.' }),
    retryLaterSec: Type.Integer({ minimum: 1, maximum: 86_400, default: 60, description: 'Wait before retrying a deferred update (lock held, hook exit 75).' }),
    download: Type.Object(
      {
        maxBytes: Type.Integer({ minimum: 4096, default: 4 * 1024 * 1024 * 1024 }),
        retries: Type.Integer({ minimum: 0, maximum: 100, default: 8 }),
        retryDelayMs: Type.Integer({ minimum: 10, maximum: 600_000, default: 2000 }),
        stallTimeoutSec: Type.Integer({ minimum: 1, maximum: 3600, default: 60 }),
      },
      { additionalProperties: false, default: {} },
    ),
    fleet: Type.Object(
      {
        rebootAfterInstall: Type.Boolean({ default: true, description: 'An `ota.install` request reboots into the trial once installed.' }),
        maxDeferSec: Type.Integer({ minimum: 0, maximum: 7 * 86_400, default: 86_400, description: 'How long an `ota.install` waits for the update lock.' }),
        via: Type.Union([Type.Literal('in-process'), Type.Literal('agent')], {
          default: 'in-process',
          description:
            'Who runs fleet `ota.install`/`ota.status`: `in-process` (the runtime itself, which then needs write access to the slots and the boot environment) or `agent` (the root OTA agent, `outpost ota agent`, reached on `agentSocket`; the runtime stays unprivileged).',
        }),
        agentSocket: Type.String({ minLength: 1, default: '/run/outpost-ota.sock', description: "The OTA agent's unix socket (services/outpost-ota-agent.socket)." }),
        reportOutcome: Type.Boolean({ default: true, description: 'Publish how each update ended (`ota.committed`, `ota.rolled-back`) once upstream as a system event.' }),
      },
      { additionalProperties: false, default: {} },
    ),
  },
  { additionalProperties: false, description: 'A/B updater: RAUC bundles, boot selection, update flow (docs/ota.md).' },
);

export type OtaConfigT = Static<typeof OtaConfig>;
export type OtaSlotT = Static<typeof OtaSlot>;
export type OtaBootloaderT = Static<typeof OtaBootloader>;
export const OTA_STATES = STATES;
