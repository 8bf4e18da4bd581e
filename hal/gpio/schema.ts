import { Type, type Static } from '@sinclair/typebox';
import { Id, TaggedUnion } from '../schema-common.js';
import { SimModel } from '../sim-model.js';

export const GpioPoint = Type.Object(
  {
    id: Id,
    description: Type.Optional(Type.String({ maxLength: 200 })),
    pin: Type.Integer({ minimum: 0, maximum: 1023, description: 'Line number on the chip (BCM number on a Raspberry Pi).' }),
    direction: Type.Union([Type.Literal('in'), Type.Literal('out')]),
    edge: Type.Union([Type.Literal('none'), Type.Literal('rising'), Type.Literal('falling'), Type.Literal('both')], {
      default: 'both',
      description: 'Inputs: edges that produce a reading at once (`none` polls every `pollIntervalMs`).',
    }),
    debounceMs: Type.Integer({ minimum: 0, maximum: 10_000, default: 0, description: 'Inputs: a level must stay this long to count.' }),
    activeLow: Type.Boolean({ default: false }),
    safeState: Type.Optional(
      Type.Boolean({ description: 'Outputs: value applied at start and at shutdown (required for outputs).' }),
    ),
    writable: Type.Boolean({ default: false, description: 'Outputs only: whether rules, the broker and the API may set it.' }),
    heartbeatMs: Type.Optional(Type.Integer({ minimum: 100 })),
    sim: Type.Optional(SimModel),
  },
  { additionalProperties: false },
);

export const GpioConnection = TaggedUnion('type', [
  Type.Object(
    {
      type: Type.Literal('sysfs'),
      chipLabel: Type.Optional(
        Type.String({ description: 'Label of the gpiochip whose base offsets `pin` (e.g. `pinctrl-bcm2711`); found in /sys/class/gpio.' }),
      ),
      sysfsRoot: Type.String({ default: '/sys/class/gpio' }),
    },
    { additionalProperties: false, description: 'Linux GPIO through sysfs (onoff).' },
  ),
  Type.Object({ type: Type.Literal('sim'), seed: Type.Integer({ default: 1 }) }, { additionalProperties: false }),
]);

export const GpioDevice = Type.Object(
  {
    id: Id,
    kind: Type.Literal('gpio'),
    description: Type.Optional(Type.String({ maxLength: 200 })),
    enabled: Type.Boolean({ default: true }),
    connection: GpioConnection,
    pollIntervalMs: Type.Integer({ minimum: 10, maximum: 86_400_000, default: 1000, description: 'Inputs without edges, and the periodic re-read of every line.' }),
    points: Type.Array(GpioPoint, { minItems: 1 }),
  },
  { additionalProperties: false },
);

export type GpioPointConfig = Static<typeof GpioPoint>;
export type GpioDeviceConfig = Static<typeof GpioDevice>;
