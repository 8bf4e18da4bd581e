import { describeChar, quoteExcerpt, routeSyntaxError } from './syntax-error.js';

const FIELD_PATH = /^(?:\$body\.)?[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*$/i;
const BODY_PREFIX = '$body.';

/**
 * Checks a `$broker("…")` topic template at parse time. `columnOf(i)` gives the 1-based route column of
 * character `i` of the template. Rules: not empty; `{field}` placeholders hold a (dotted) field name, optionally
 * `$body.`-prefixed; no stray '{' or '}'; no MQTT wildcard ('+', '#') outside placeholders; no NUL character.
 */
export function validateTopicTemplate(template: string, columnOf: (i: number) => number): void {
  if (template === '') throw routeSyntaxError(columnOf(0), 'a broker topic', 'an empty string', 'broker topic must not be empty');
  let i = 0;
  while (i < template.length) {
    const ch = template.charAt(i);
    if (ch === '{') {
      const close = template.indexOf('}', i + 1);
      if (close < 0) throw routeSyntaxError(columnOf(i), "'}' closing the placeholder", 'end of topic', "unclosed '{' in broker topic");
      const name = template.slice(i + 1, close);
      if (!FIELD_PATH.test(name)) {
        const shown = quoteExcerpt(`{${name}}`);
        throw routeSyntaxError(columnOf(i), 'a placeholder like {device}', shown, `invalid placeholder ${shown} in broker topic`);
      }
      i = close + 1;
      continue;
    }
    if (ch === '}') throw routeSyntaxError(columnOf(i), "'{' before '}'", "'}'", "unmatched '}' in broker topic");
    if (ch === '+' || ch === '#') {
      throw routeSyntaxError(columnOf(i), 'a topic without wildcards', `'${ch}'`, `'${ch}' is not allowed in a broker topic outside a placeholder`);
    }
    if (ch === '\0') throw routeSyntaxError(columnOf(i), 'a printable character', describeChar(ch), 'NUL character in broker topic');
    i++;
  }
}

/** Reads a (dotted) field of a message body: own properties of plain objects only, undefined otherwise. Never throws. */
export function readField(body: unknown, path: readonly string[]): unknown {
  let current: unknown = body;
  for (const key of path) {
    if (current === null || typeof current !== 'object' || Array.isArray(current)) return undefined;
    if (!Object.hasOwn(current, key)) return undefined;
    current = (current as Record<string, unknown>)[key];
  }
  return current;
}

function placeholderValue(name: string, body: Record<string, unknown>): string {
  const path = name.slice(0, BODY_PREFIX.length).toLowerCase() === BODY_PREFIX ? name.slice(BODY_PREFIX.length) : name;
  const value = readField(body, path.split('.'));
  let text: string;
  if (typeof value === 'string') text = value;
  else if (typeof value === 'number' || typeof value === 'boolean') text = String(value);
  else text = '';
  return text === '' ? '_' : text.replace(/[+#/\u0000]/g, '_');
}

/**
 * Renders a broker topic template for one message body: each `{field}` becomes the field's value;
 * a missing, null, empty or non-scalar value becomes `_`, and '+', '#', '/' and NUL inside a value become `_`
 * (a value can neither add topic levels nor wildcards, nor make the topic invalid). Text outside placeholders is kept as is;
 * an unclosed '{' is kept literally. Never throws.
 */
export function renderTopic(template: string, body: Record<string, unknown>): string {
  let open = template.indexOf('{');
  if (open < 0) return template;
  let out = '';
  let from = 0;
  while (open >= 0) {
    const close = template.indexOf('}', open + 1);
    if (close < 0) break;
    out += template.slice(from, open) + placeholderValue(template.slice(open + 1, close), body);
    from = close + 1;
    open = template.indexOf('{', from);
  }
  return out + template.slice(from);
}
