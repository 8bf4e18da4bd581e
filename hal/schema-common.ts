import { Type, type Static, type TSchema } from '@sinclair/typebox';

/**
 * Schema pieces shared by every device kind. The one configuration schema (src/config/schema.ts)
 * is composed from these and from each hal/<kind>/schema.ts.
 */

/** Identifier of a device, point, rule or route: safe in MQTT topics, URLs and Prometheus labels. */
export const ID_PATTERN = '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$';
export const Id = Type.String({
  pattern: ID_PATTERN,
  description: 'Letters, digits, `_ . : -`; starts with a letter or digit; at most 64 characters.',
});

/**
 * A discriminated union that ajv validates branch by branch (`discriminator` keyword): errors name
 * only the branch selected by the tag, and defaults inside the branch are applied.
 */
export function TaggedUnion<T extends TSchema[]>(tag: string, branches: [...T], options: { description?: string; default?: unknown } = {}) {
  return Type.Unsafe<Static<T[number]>>({
    type: 'object',
    required: [tag],
    discriminator: { propertyName: tag },
    oneOf: branches,
    ...options,
  });
}

export const Scale = Type.Object(
  {
    factor: Type.Number({ default: 1, description: 'Multiplier applied to the raw value.' }),
    offset: Type.Number({ default: 0, description: 'Added after the multiplier: value = raw × factor + offset.' }),
  },
  { additionalProperties: false, description: 'Linear conversion from raw to engineering value.' },
);

export const Deadband = Type.Union(
  [
    Type.Object(
      { absolute: Type.Number({ exclusiveMinimum: 0, description: 'Report only when the value moved by more than this.' }) },
      { additionalProperties: false },
    ),
    Type.Object(
      {
        percent: Type.Number({
          exclusiveMinimum: 0,
          maximum: 100,
          description: 'Report only when the value moved by more than this percentage of `range` (or, without a range, of the last reported value).',
        }),
      },
      { additionalProperties: false },
    ),
  ],
  { description: 'Suppress small changes. A change of quality is always reported.' },
);

export const Range = Type.Object(
  { min: Type.Number(), max: Type.Number() },
  { additionalProperties: false, description: 'Engineering range of the value, used by percent deadbands.' },
);

/** Reporting options every point has, whatever its kind. */
export const PointReporting = {
  description: Type.Optional(Type.String({ maxLength: 200 })),
  units: Type.Optional(Type.String({ maxLength: 32, description: 'Engineering units, e.g. `degC`, `mm`, `kWh`.' })),
  scale: Type.Optional(Scale),
  range: Type.Optional(Range),
  deadband: Type.Optional(Deadband),
  heartbeatMs: Type.Optional(
    Type.Integer({ minimum: 100, description: 'Report the current value at least this often, even when it did not change.' }),
  ),
};

export const WritableFlag = Type.Boolean({
  default: false,
  description: 'Whether rules, the local broker and the API may write this point.',
});

export type ScaleConfig = Static<typeof Scale>;
export type DeadbandConfig = Static<typeof Deadband>;
export type RangeConfig = Static<typeof Range>;

/** What the runtime needs of any configured point, whatever the device kind. */
export interface PointCommonConfig {
  readonly id: string;
  readonly description?: string;
  readonly units?: string;
  readonly scale?: ScaleConfig;
  readonly range?: RangeConfig;
  readonly deadband?: DeadbandConfig;
  readonly heartbeatMs?: number;
  readonly writable?: boolean;
}
