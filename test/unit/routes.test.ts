import { describe, it, expect } from 'vitest';
import { ERROR_CATALOG } from '../../src/errors/catalog.js';
import { OutpostError } from '../../src/errors/outpost-error.js';
import { compileRoute, parseRoute, renderTopic, type CompiledRoute } from '../../src/routes/index.js';

const reading = { point: 'temp1', device: 'plc1', value: 72.5, quality: 'good', sourceTime: 1_700_000_000_000, seq: 42, bootId: 'b' };
const badReading = {
  ...{ point: 'press', device: 'plc2', value: null, quality: 'bad', reason: 'timeout' },
  ...{ sourceTime: 1_700_000_000_500, seq: 7, bootId: 'b' },
};
const event = { rule: 'overheat', state: 'triggered', point: 'temp1', value: 91, quality: 'good', time: 1_700_000_001_000, bootId: 'b' };
const nested = { point: 'gps', meta: { site: 'north', level: 3, tags: { zone: 'z1' } }, value: 'fix' };

const READING_PATH = '/readings/plc1/temp1';
const EVENT_PATH = '/events/overheat';

function where(route: CompiledRoute, body: Record<string, unknown>): boolean {
  if (route.where === null) throw new Error('route has no WHERE clause');
  return route.where(body);
}

/** Evaluates a condition against a body through a whole route. */
function cond(condition: string, body: Record<string, unknown> = reading): boolean {
  return where(compileRoute(`FROM /* WHERE ${condition} INTO $upstream`), body);
}

function syntaxError(text: string): OutpostError {
  try {
    compileRoute(text);
  } catch (e) {
    expect(e).toBeInstanceOf(OutpostError);
    return e as OutpostError;
  }
  throw new Error(`route compiled but should not have: ${text}`);
}

describe('valid routes', () => {
  const cases: {
    route: string;
    sources: [string, boolean][];
    bodies: [Record<string, unknown>, boolean][];
    sink: { type: 'upstream' } | { type: 'broker'; topic: string };
  }[] = [
    {
      route: 'FROM /* INTO $upstream',
      sources: [[READING_PATH, true], [EVENT_PATH, true], ['/x', true], ['/', false], ['', false], ['readings/plc1/temp1', false]],
      bodies: [],
      sink: { type: 'upstream' },
    },
    {
      route: 'FROM /readings/* WHERE value > 70 INTO $upstream',
      sources: [[READING_PATH, true], ['/readings/plc1', true], ['/readings', false], [EVENT_PATH, false], ['/readings//temp1', false]],
      bodies: [[reading, true], [badReading, false], [{ ...reading, value: 70 }, false], [{ ...reading, value: '80' }, false]],
      sink: { type: 'upstream' },
    },
    {
      route: 'FROM /readings/{device}/* INTO $broker("plant/{device}/{point}")',
      sources: [[READING_PATH, true], ['/readings/plc1', false], ['/readings/plc1/temp1/extra', true], [EVENT_PATH, false]],
      bodies: [],
      sink: { type: 'broker', topic: 'plant/{device}/{point}' },
    },
    {
      route: 'FROM /readings/plc1/temp1 WHERE quality = "good" INTO $upstream',
      sources: [[READING_PATH, true], ['/readings/plc1/temp2', false], ['/readings/plc1/temp1/x', false], ['/readings/PLC1/temp1', false]],
      bodies: [[reading, true], [badReading, false]],
      sink: { type: 'upstream' },
    },
    {
      route: 'FROM /readings/{device}/temp1 INTO $upstream',
      sources: [[READING_PATH, true], ['/readings/plc9/temp1', true], ['/readings/plc1/temp2', false], ['/readings/temp1', false]],
      bodies: [],
      sink: { type: 'upstream' },
    },
    {
      route: "FROM /events/* WHERE state = 'triggered' AND rule = 'overheat' INTO $broker('alerts/{rule}')",
      sources: [[EVENT_PATH, true], ['/events/other', true], [READING_PATH, false]],
      bodies: [[event, true], [{ ...event, state: 'released' }, false], [reading, false]],
      sink: { type: 'broker', topic: 'alerts/{rule}' },
    },
    {
      route: 'FROM /events/overheat INTO BrokeredEndpoint("alerts/overheat")',
      sources: [[EVENT_PATH, true], ['/events/overheat2', false]],
      bodies: [],
      sink: { type: 'broker', topic: 'alerts/overheat' },
    },
    {
      route: 'from /readings/* where quality != "good" or reason = "timeout" into $UPSTREAM',
      sources: [[READING_PATH, true]],
      bodies: [[badReading, true], [reading, false]],
      sink: { type: 'upstream' },
    },
    {
      route: '  FROM\n  /readings/*\n\tWHERE\n    $body.value >= 72.5\r\n    AND seq % 2 = 0\nINTO\n  $upstream  ',
      sources: [[READING_PATH, true]],
      bodies: [[reading, true], [{ ...reading, seq: 43 }, false], [{ ...reading, value: 72.4 }, false]],
      sink: { type: 'upstream' },
    },
    {
      route: 'FROM /readings/dev-1.a:b_c/* WHERE meta.tags.zone = "z1" INTO $upstream',
      sources: [['/readings/dev-1.a:b_c/p', true], ['/readings/dev-1/p', false]],
      bodies: [[nested, true], [reading, false]],
      sink: { type: 'upstream' },
    },
    {
      route: 'FROM /* WHERE IS_DEFINED(reason) INTO $broker("faults/{device}/{point}/{reason}")',
      sources: [[READING_PATH, true]],
      bodies: [[badReading, true], [reading, false], [{ ...reading, reason: null }, true]],
      sink: { type: 'broker', topic: 'faults/{device}/{point}/{reason}' },
    },
  ];

  for (const c of cases) {
    it(`compiles ${JSON.stringify(c.route)}`, () => {
      const route = compileRoute(c.route);
      expect(route.text).toBe(c.route);
      expect(route.sink).toEqual(c.sink);
      for (const [path, expected] of c.sources) expect([path, route.matchesSource(path)]).toEqual([path, expected]);
      if (c.bodies.length === 0) expect(route.where).toBeNull();
      for (const [body, expected] of c.bodies) expect(where(route, body)).toBe(expected);
    });
  }

  it('exposes the parsed source pattern', () => {
    expect(compileRoute('FROM /readings/{device}/* INTO $upstream').source).toEqual({
      text: '/readings/{device}/*',
      segments: [
        { kind: 'literal', value: 'readings' },
        { kind: 'param', name: 'device' },
      ],
      wildcard: true,
    });
    expect(compileRoute('FROM /events/overheat INTO $upstream').source.wildcard).toBe(false);
  });

  it('parses into an AST with columns', () => {
    const ast = parseRoute('FROM /* WHERE NOT a = 1 + 2 * -b INTO $upstream');
    const a = { kind: 'field', path: ['a'], column: 19 };
    const b = { kind: 'field', path: ['b'], column: 32 };
    const product = { kind: 'arith', op: '*', column: 29, left: { kind: 'literal', value: 2, column: 27 }, right: { kind: 'negate', column: 31, operand: b } };
    const sum = { kind: 'arith', op: '+', column: 25, left: { kind: 'literal', value: 1, column: 23 }, right: product };
    expect(ast.where).toEqual({ kind: 'not', column: 15, operand: { kind: 'compare', op: '=', column: 21, left: a, right: sum } });
    expect(ast.sink).toEqual({ type: 'upstream' });
    expect(parseRoute('FROM /* WHERE x = -2.5 INTO $upstream').where).toMatchObject({ right: { kind: 'literal', value: -2.5 } });
  });

  it('returns a frozen compiled route', () => {
    expect(Object.isFrozen(compileRoute('FROM /* INTO $upstream'))).toBe(true);
  });
});

describe('invalid routes', () => {
  const cases: [route: string, column: number, fragment: string][] = [
    ['', 1, 'expected FROM, found end of route'],
    ['SELECT * FROM /x', 1, "expected FROM, found 'SELECT'"],
    ['FROM', 5, 'expected a source path after FROM, found end of route'],
    ['FROM readings/* INTO $upstream', 6, "source must start with '/'"],
    ['FROM /read* INTO $upstream', 11, "'*' must be a whole segment"],
    ['FROM /readings/*/temp1 INTO $upstream', 16, "'*' is only allowed as the last source segment"],
    ['FROM /readings/ INTO $upstream', 16, "expected a segment after '/'"],
    ['FROM /a//b INTO $upstream', 9, "expected a segment after '/', found '/'"],
    ['FROM /a/b$ INTO $upstream', 10, "invalid character '$' in source path"],
    ['FROM /a/{dev INTO $upstream', 9, "invalid placeholder segment '{dev'"],
    ['FROM /a/{d}/{d} INTO $upstream', 13, "duplicate placeholder '{d}'"],
    ['FROM /*', 8, 'expected WHERE <condition> or INTO <sink>, found end of route'],
    ['FROM /* WHERE', 14, "expected a value after 'WHERE', found end of route"],
    ['FROM /readings/* WHERE value >', 31, "expected a value after '>', found end of route"],
    ['FROM /* WHERE value > 1', 24, 'expected an operator or INTO <sink>, found end of route'],
    ['FROM /* WHERE value > 1 foo INTO $upstream', 25, "expected an operator or INTO <sink>, found 'foo'"],
    ['FROM /* WHERE NOT INTO $upstream', 19, "expected a value after 'NOT', found 'INTO'"],
    ['FROM /* WHERE value > 1 AND AND x INTO $upstream', 29, "expected a value after 'AND', found 'AND'"],
    ['FROM /* WHERE FOO(value) > 1 INTO $upstream', 15, "unknown function 'FOO'"],
    ['FROM /* WHERE ABS(value, 2) > 1 INTO $upstream', 15, 'function ABS takes 1 argument, found 2'],
    ['FROM /* WHERE starts_with(point) INTO $upstream', 15, 'function STARTS_WITH takes 2 arguments, found 1'],
    ['FROM /* WHERE ABS(value INTO $upstream', 25, "expected ',' or ')' to close the '(' at column 18, found 'INTO'"],
    ['FROM /* WHERE (value > 1 INTO $upstream', 26, "expected ')' to close the '(' at column 15, found 'INTO'"],
    ['FROM /* WHERE value > 1 < 2 INTO $upstream', 25, 'comparisons cannot be chained'],
    ['FROM /* WHERE value = "abc INTO $upstream', 23, 'unterminated string'],
    ['FROM /* WHERE value = "x\ny" INTO $upstream', 23, 'unterminated string'],
    ['FROM /* WHERE value = "a\\qb" INTO $upstream', 25, "invalid escape '\\q' in string"],
    ['FROM /* WHERE value && 1 INTO $upstream', 21, "unexpected character '&'"],
    ['FROM /* WHERE value == 1 INTO $upstream', 22, "expected a value after '=', found '='"],
    ['FROM /* WHERE 1. > 0 INTO $upstream', 17, "expected a digit after '.'"],
    ['FROM /* WHERE 1e+ > 0 INTO $upstream', 18, 'expected exponent digits'],
    ['FROM /* WHERE 12abc > 0 INTO $upstream', 17, "unexpected character 'a' after a number"],
    ['FROM /* WHERE 1e999 > 1 INTO $upstream', 15, 'number out of range'],
    ['FROM /* WHERE a. > 1 INTO $upstream', 17, "expected a field name after '.'"],
    ['FROM /* WHERE $foo > 0 INTO $upstream', 15, "unknown system property '$foo'"],
    ['FROM /* WHERE $body > 0 INTO $upstream', 20, "expected '.' and a field name after '$body', found '>'"],
    ['FROM /* INTO', 13, 'expected a sink: $upstream or $broker("topic"), found end of route'],
    ['FROM /* INTO $foo', 14, "found '$foo'"],
    ['FROM /* INTO $broker', 21, "expected '(' after '$broker', found end of route"],
    ['FROM /* INTO $broker(a)', 22, "expected a quoted broker topic, found 'a'"],
    ['FROM /* INTO $broker("a"', 25, "expected ')' after the broker topic, found end of route"],
    ['FROM /* INTO $broker("")', 22, 'broker topic must not be empty'],
    ['FROM /* INTO $broker("a/+/b")', 25, "'+' is not allowed in a broker topic"],
    ["FROM /* INTO $broker('a/\\u0062/#')", 32, "'#' is not allowed in a broker topic"],
    ['FROM /* INTO $broker("a/{x")', 25, "unclosed '{' in broker topic"],
    ['FROM /* INTO $broker("a/x}")', 26, "unmatched '}' in broker topic"],
    ['FROM /* INTO $broker("a/{1x}")', 25, "invalid placeholder '{1x}' in broker topic"],
    ['FROM /* INTO $broker("a/b") x', 29, "expected end of route after the sink, found 'x'"],
    ['FROM /* INTO $upstream $upstream', 24, "expected end of route after the sink, found '$upstream'"],
  ];

  for (const [route, column, fragment] of cases) {
    it(`rejects ${JSON.stringify(route)} at column ${column}`, () => {
      const e = syntaxError(route);
      expect(e.code).toBe('OUTPOST_E_ROUTE_SYNTAX');
      expect(e.message).toContain(fragment);
      expect(e.message.startsWith(`at column ${column}: `)).toBe(true);
      expect(e.details).toMatchObject({ column });
      expect(typeof e.details['expected']).toBe('string');
      expect(typeof e.details['found']).toBe('string');
      expect(e.message).not.toMatch(/[\r\n]/);
      if (route.length > 12) expect(e.message).not.toContain(route);
    });
  }

  it('reports bad input (exit code 2) and is in the catalog', () => {
    const e = syntaxError('FROM /* WHERE INTO $upstream');
    expect(e.exitCode).toBe(2);
    expect(ERROR_CATALOG.OUTPOST_E_ROUTE_SYNTAX).toMatchObject({ area: 'route', input: true });
    expect(e.toJSON().details).toEqual({ column: 15, expected: "a value after 'WHERE'", found: "'INTO'" });
  });

  it('bounds nesting and length instead of overflowing the stack', () => {
    const deep = `FROM /* WHERE ${'('.repeat(100)}1 = 1${')'.repeat(100)} INTO $upstream`;
    expect(syntaxError(deep).message).toContain('nested too deeply');
    const long = `FROM /* WHERE ${Array.from({ length: 1500 }, (_, i) => `seq = ${i}`).join(' OR ')} INTO $upstream`;
    expect(syntaxError(long).message).toContain('too long or nested too deeply');
    const fine = `FROM /* WHERE ${Array.from({ length: 200 }, (_, i) => `seq = ${i}`).join(' OR ')} INTO $upstream`;
    expect(where(compileRoute(fine), reading)).toBe(true);
  });
});

describe('condition semantics', () => {
  it('applies precedence: OR < AND < NOT < comparison < additive < multiplicative < unary minus', () => {
    expect(cond('true OR false AND false')).toBe(true);
    expect(cond('(true OR false) AND false')).toBe(false);
    expect(cond('NOT false AND false')).toBe(false);
    expect(cond('NOT (false AND false)')).toBe(true);
    expect(cond('NOT value = 1')).toBe(true);
    expect(cond('1 + 2 * 3 = 7')).toBe(true);
    expect(cond('(1 + 2) * 3 = 9')).toBe(true);
    expect(cond('10 - 4 - 3 = 3')).toBe(true);
    expect(cond('2 * 3 % 4 = 2')).toBe(true);
    expect(cond('-2 * -3 = 6')).toBe(true);
    expect(cond('- value = -72.5')).toBe(true);
    expect(cond('-(1 + 2) = -3')).toBe(true);
    expect(cond('value * 2 > 100 + 40')).toBe(true);
  });

  it('supports every comparison operator', () => {
    expect(cond('seq = 42')).toBe(true);
    expect(cond('seq != 41')).toBe(true);
    expect(cond('seq <> 42')).toBe(false);
    expect(cond('seq < 43 AND seq <= 42 AND seq > 41 AND seq >= 42')).toBe(true);
    expect(cond("point < 'temp2' AND point >= 'temp1'")).toBe(true);
    expect(cond('true = true AND false != true')).toBe(true);
  });

  it('parses number and string literals', () => {
    expect(cond('1e3 = 1000 AND 1.5E-1 = 0.15 AND 2.50 = 2.5 AND 0 = 0')).toBe(true);
    expect(cond(`'it\\'s' = "it's"`)).toBe(true);
    expect(cond(`"a\\"b\\\\c" = 'a"b\\\\c'`)).toBe(true);
    expect(cond(`LOWER("\\u0041\\t") = 'a\t'`)).toBe(true);
  });

  it('is false for comparisons between different types', () => {
    expect(cond("value = '72.5'")).toBe(false);
    expect(cond("value != '72.5'")).toBe(false);
    expect(cond('quality = true')).toBe(false);
    expect(cond('true < false OR true > false')).toBe(false);
    expect(cond('meta = 1 OR meta != 1', nested)).toBe(false);
  });

  it('handles undefined and null', () => {
    expect(cond('missing = 1')).toBe(false);
    expect(cond('missing != 1')).toBe(false);
    expect(cond('missing = null')).toBe(false);
    expect(cond('missing != null')).toBe(false);
    expect(cond('value = null', badReading)).toBe(true);
    expect(cond('value != null', badReading)).toBe(false);
    expect(cond('value != null')).toBe(true);
    expect(cond('value = null')).toBe(false);
    expect(cond('null = null AND NOT (null != null)')).toBe(true);
    expect(cond('value > 0 OR value < 0 OR value = 0', badReading)).toBe(false);
    expect(cond('null < 1 OR null <= null')).toBe(false);
  });

  it('treats non-boolean logical operands as false', () => {
    expect(cond('value AND true')).toBe(false);
    expect(cond('value OR false')).toBe(false);
    expect(cond('NOT value')).toBe(true);
    expect(cond('NOT missing')).toBe(true);
    expect(cond('flag', { flag: true })).toBe(true);
    expect(cond('flag', { flag: 1 })).toBe(false);
    expect(cond('value')).toBe(false);
  });

  it('yields undefined for arithmetic on non-numbers or non-finite results', () => {
    expect(cond("point + 1 = 'temp11'")).toBe(false);
    expect(cond('missing + 1 != 1')).toBe(false);
    expect(cond('-point != 0 OR -point = 0')).toBe(false);
    expect(cond('value / 0 > 0 OR value / 0 < 0 OR value / 0 = value / 0')).toBe(false);
    expect(cond('value % 0 != 1')).toBe(false);
    expect(cond('IS_DEFINED(value / 0)')).toBe(false);
    expect(cond('IS_DEFINED(value / 2)')).toBe(true);
    expect(cond('seq % 5 = 2 AND 7 / 2 = 3.5')).toBe(true);
  });

  it('implements the functions, case-insensitively', () => {
    expect(cond('IS_DEFINED(value) AND is_defined(point) AND NOT Is_Defined(reason)')).toBe(true);
    expect(cond("STARTS_WITH(point, 'te') AND ENDS_WITH(point, 'p1') AND CONTAINS(device, 'lc')")).toBe(true);
    expect(cond("starts_with(point, 'x') OR ends_with(point, 'x') OR contains(point, 'x')")).toBe(false);
    expect(cond("STARTS_WITH(seq, '4') = false")).toBe(false);
    expect(cond('ABS(-3.5) = 3.5 AND ABS(value - 100) = 27.5')).toBe(true);
    expect(cond("IS_DEFINED(ABS('x'))")).toBe(false);
    expect(cond("LOWER('AbC') = 'abc' AND UPPER(point) = 'TEMP1'")).toBe(true);
    expect(cond('IS_DEFINED(LOWER(seq)) OR IS_DEFINED(UPPER(missing))')).toBe(false);
    expect(cond('IS_DEFINED(reason)', { reason: null })).toBe(true);
  });

  it('accepts $body. prefixes and dotted fields', () => {
    expect(cond('$body.value = value AND $BODY.seq = 42')).toBe(true);
    expect(cond("$body.meta.site = 'north' AND meta.level + 1 = 4", nested)).toBe(true);
    expect(cond('IS_DEFINED(meta.nope.deeper) OR IS_DEFINED(point.length)', nested)).toBe(false);
    expect(cond('$body.where = 1', { where: 1 })).toBe(true);
  });

  it('treats keywords case-insensitively and ignores layout', () => {
    expect(cond('seq = 42 aNd NoT (value < 0) Or FALSE')).toBe(true);
    expect(cond('TRUE and True and true')).toBe(true);
    expect(cond('seq=42AND value>0'.replace('AND', ' AND '))).toBe(true);
    expect(cond('(seq=42)AND(value>0)')).toBe(true);
  });

  it('reads only own data properties and never throws', () => {
    expect(cond('IS_DEFINED(toString) OR IS_DEFINED(constructor) OR IS_DEFINED(__proto__)')).toBe(false);
    const route = compileRoute('FROM /* WHERE value > 1 INTO $upstream');
    const hostile = Object.defineProperty({}, 'value', {
      enumerable: true,
      get() {
        throw new Error('boom');
      },
    });
    expect(where(route, hostile)).toBe(false);
    expect(where(route, null as unknown as Record<string, unknown>)).toBe(false);
    expect(where(route, [5] as unknown as Record<string, unknown>)).toBe(false);
    expect(where(route, Object.assign(Object.create(null), { value: 2 }))).toBe(true);
    expect(cond('IS_DEFINED(tags.length)', { tags: ['a'] })).toBe(false);
  });

  it('gives consistent results over many evaluations of one compiled route', () => {
    const route = compileRoute(
      "FROM /readings/* WHERE quality = 'good' AND (value > 70 OR STARTS_WITH(point, 'press')) AND $body.seq % 2 = 0 INTO $upstream",
    );
    const bodies = Array.from({ length: 1000 }, (_, i) => ({ ...reading, seq: i, value: i % 100 }));
    let hits = 0;
    for (let round = 0; round < 100; round++) {
      for (const body of bodies) if (route.matchesSource(READING_PATH) && where(route, body)) hits++;
    }
    expect(hits).toBe(100 * 140); // per 1000 bodies: even values 72..98 = 14, ten times
  });
});

describe('renderTopic', () => {
  it('substitutes placeholders from the body', () => {
    expect(renderTopic('alerts/{device}/{point}', reading)).toBe('alerts/plc1/temp1');
    expect(renderTopic('v/{value}/{seq}/{flag}', { value: 72.5, seq: 42, flag: false })).toBe('v/72.5/42/false');
    expect(renderTopic('site/{meta.site}/{$body.meta.tags.zone}', nested)).toBe('site/north/z1');
    expect(renderTopic('static/topic', reading)).toBe('static/topic');
  });

  it('uses _ for missing, null, empty and non-scalar values', () => {
    expect(renderTopic('a/{missing}/{value}/{empty}/{meta}', { value: null, empty: '', meta: { x: 1 } })).toBe('a/_/_/_/_');
  });

  it('replaces + # / inside substituted values', () => {
    expect(renderTopic('a/{point}/b', { point: 'x/y+z#' })).toBe('a/x_y_z_/b');
  });

  it('never throws on odd templates', () => {
    expect(renderTopic('a/{point', reading)).toBe('a/{point');
    expect(renderTopic('{point}{device}', reading)).toBe('temp1plc1');
    expect(renderTopic('', reading)).toBe('');
  });

  it('renders the topic of a compiled broker sink', () => {
    const route = compileRoute("FROM /events/* INTO $broker('alerts/{rule}/{point}')");
    expect(route.sink.type).toBe('broker');
    if (route.sink.type === 'broker') expect(renderTopic(route.sink.topic, event)).toBe('alerts/overheat/temp1');
  });
});
