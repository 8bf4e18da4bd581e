/** Error codes of the route grammar (src/routes/): parsing and compiling `FROM … [WHERE …] INTO …` routes. */
export const ROUTE_CODES = {
  OUTPOST_E_ROUTE_SYNTAX: {
    area: 'route',
    summary:
      'A route does not follow the grammar FROM <source> [WHERE <condition>] INTO <sink>; the message gives the 1-based column, what was expected and what was found.',
    input: true,
  },
} as const;
