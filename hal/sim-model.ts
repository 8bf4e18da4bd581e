import { Type, type Static } from '@sinclair/typebox';
import { TaggedUnion } from './schema-common.js';

/**
 * How a simulated value evolves. Every simulator (Modbus, OPC UA, serial, GPIO) uses these models,
 * so a demo or test config describes plausible devices without hardware.
 */
export const SimModel = TaggedUnion(
  'model',
  [
    Type.Object(
      {
        model: Type.Literal('drift'),
        start: Type.Number({ default: 20 }),
        step: Type.Number({ default: 0.1, minimum: 0, description: 'Largest change per update.' }),
        min: Type.Number({ default: -1e9 }),
        max: Type.Number({ default: 1e9 }),
      },
      { additionalProperties: false, description: 'Random walk, e.g. a temperature.' },
    ),
    Type.Object(
      {
        model: Type.Literal('sine'),
        min: Type.Number({ default: 0 }),
        max: Type.Number({ default: 100 }),
        periodMs: Type.Integer({ minimum: 100, default: 60_000 }),
      },
      { additionalProperties: false, description: 'Smooth oscillation between min and max, e.g. a distance.' },
    ),
    Type.Object(
      {
        model: Type.Literal('counter'),
        start: Type.Number({ default: 0 }),
        step: Type.Number({ default: 1 }),
        wrap: Type.Optional(Type.Number({ exclusiveMinimum: 0, description: 'Wrap to `start` when reaching this value.' })),
      },
      { additionalProperties: false, description: 'Monotonic counter, e.g. produced parts or energy.' },
    ),
    Type.Object(
      { model: Type.Literal('toggle'), periodMs: Type.Integer({ minimum: 10, default: 5000 }) },
      { additionalProperties: false, description: 'Boolean flipping every period, e.g. a coil or a switch.' },
    ),
    Type.Object(
      { model: Type.Literal('constant'), value: Type.Union([Type.Number(), Type.Boolean(), Type.String()]) },
      { additionalProperties: false },
    ),
  ],
  { description: 'Simulator behaviour of this point (used only when the device connection is `sim`).' },
);

export type SimModelConfig = Static<typeof SimModel>;

export { SimSignal, seededRandom } from './sim-signal.js';
