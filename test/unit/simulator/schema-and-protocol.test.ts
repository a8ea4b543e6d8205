import { describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { TD_FUNCTIONS } from '../../../runtime/simulator/generated/td-functions.js';
import * as O from '../../../runtime/simulator/objects.js';
import { int32, int53, parseRequest, str } from '../../../runtime/simulator/protocol.js';
import { typesFile, validateTdObject } from './support/td-schema.js';

describe('TDLib schema validator (test support)', () => {
  const message = O.message({
    id: 1,
    sender_user_id: 2,
    chat_id: 3,
    date: 4,
    text: O.formattedText('x', []),
  });

  it('accepts what the simulator builds', () => {
    expect(validateTdObject(message)).toEqual([]);
    expect(validateTdObject(O.updateMessageSendSucceeded(message, 5), 'Update')).toEqual([]);
  });

  it('catches missing, unknown and mistyped fields', () => {
    const { is_pinned: _pinned, ...missing } = message;
    expect(validateTdObject(missing)).toEqual(['$.is_pinned: required field of message is missing']);
    expect(validateTdObject({ ...message, extra_field: 1 })).toEqual([
      '$.extra_field: not a field of message',
    ]);
    expect(validateTdObject({ ...message, date: '4' })).toEqual(['$.date: expected a number, got "4"']);
    expect(validateTdObject({ ...message, sending_state: { '@type': 'ok' } })).toEqual([
      "$.sending_state: '@type' ok is not a MessageSendingState",
    ]);
  });
});

describe('request parsing', () => {
  it('mirrors td_json_client errors, carrying @extra when the JSON was an object', () => {
    expect(parseRequest('not json')).toMatchObject({ ok: false, extra: undefined, error: { code: 400 } });
    expect(parseRequest('[]')).toMatchObject({ ok: false, error: { message: 'Expected a JSON object' } });
    expect(parseRequest('{"@extra":7}')).toMatchObject({
      ok: false,
      extra: 7,
      error: { message: 'Failed to parse JSON object as TDLib request: Can\'t find field "@type"' },
    });
    expect(parseRequest('{"@type":"nope","@extra":{"a":1}}')).toMatchObject({
      ok: false,
      extra: { a: 1 },
      error: { message: 'Failed to parse JSON object as TDLib request: Unknown class "nope"' },
    });
    expect(parseRequest('{"@type":"getMe"}')).toMatchObject({ ok: true, type: 'getMe' });
  });

  it("coerces fields the way TDLib's JSON parser does", () => {
    expect(int32({ x: '5' }, 'x')).toBe(5);
    expect(int32({}, 'x')).toBe(0);
    expect(int53({ x: '5550100001' }, 'x')).toBe(5550100001);
    expect(() => int32({ x: 'abc' }, 'x')).toThrow('Can\'t parse as an integer string "abc"');
    expect(() => str({ x: 5 }, 'x')).toThrow('Expected String, but receive Number');
  });

  it('knows exactly the function names of the types package that libtdjson 1.8.67 still has', () => {
    const source = readFileSync(typesFile(), 'utf8');
    const block = /export type \$FunctionResultByName = \{\n([\s\S]*?)\n {2}\}/.exec(source)?.[1] ?? '';
    const names = new Set([...block.matchAll(/^\s+(\w+):/gm)].map((m) => m[1] ?? ''));
    const renamed = [...TD_FUNCTIONS].filter((n) => !names.has(n));
    expect(renamed.sort()).toEqual(['getGramRevenueStatistics', 'getGramWithdrawalUrl']);
    expect([...names].filter((n) => !TD_FUNCTIONS.has(n)).sort()).toEqual([
      'getTonRevenueStatistics',
      'getTonWithdrawalUrl',
    ]);
  });
});
