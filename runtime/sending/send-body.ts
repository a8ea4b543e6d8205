/**
 * The send API's request, checked field by field: every refusal names the field and what it takes. Shared
 * by the gateway (which answers the caller) and the runtime (which never trusts its caller's checks).
 */
export interface SendBody {
  to: string;
  text: string;
  parseMode?: 'Plain' | 'HTML' | 'Markdown';
  disableLinkPreview?: boolean;
  silent?: boolean;
  replyToMessageId?: number;
  /** Edits the account's own message with this id in the chat `to` names, instead of sending a new one. */
  editMessageId?: number;
}

const KEY = /^[\x21-\x7e]{1,128}$/;
const MAX_TEXT = 4096;

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

const isMessageId = (value: unknown): value is number =>
  typeof value === 'number' && Number.isSafeInteger(value) && value > 0;

export function validSendBody(body: unknown, idempotencyKey: string): SendBody | { error: string } {
  if (!KEY.test(idempotencyKey))
    return {
      error:
        'the Idempotency-Key header is required: 1-128 printable characters that name this message (e.g. a UUID), the same on every retry of it',
    };
  if (!isRecord(body))
    return { error: 'the body must be a JSON object, e.g. {"to":"@alice","text":"hello"}' };
  const known = new Set([
    'to',
    'text',
    'parseMode',
    'disableLinkPreview',
    'silent',
    'replyToMessageId',
    'editMessageId',
  ]);
  const unknown = Object.keys(body).filter((k) => !known.has(k));
  if (unknown.length > 0)
    return { error: `unknown field ${unknown.join(', ')}; fields are ${[...known].join(', ')}` };
  if (typeof body.to !== 'string' || body.to.trim() === '')
    return { error: 'to: required, @username, +phone, a user id or a t.me link' };
  if (typeof body.text !== 'string' || body.text.length === 0 || body.text.length > MAX_TEXT)
    return { error: `text: required, 1-${MAX_TEXT} characters` };
  if (body.parseMode !== undefined && !['Plain', 'HTML', 'Markdown'].includes(String(body.parseMode)))
    return { error: 'parseMode: Plain, HTML or Markdown' };
  for (const flag of ['disableLinkPreview', 'silent'] as const)
    if (body[flag] !== undefined && typeof body[flag] !== 'boolean')
      return { error: `${flag}: true or false` };
  if (body.replyToMessageId !== undefined && !isMessageId(body.replyToMessageId))
    return { error: 'replyToMessageId: the id of a message in the same chat (a positive integer)' };
  if (body.editMessageId !== undefined) {
    if (!isMessageId(body.editMessageId))
      return {
        error:
          "editMessageId: the id of the account's own message in the chat `to` names (a positive integer, as a send answered)",
      };
    for (const field of ['replyToMessageId', 'silent'] as const)
      if (body[field] !== undefined)
        return { error: `${field}: applies to new messages only; leave it out when editMessageId is set` };
  }
  return {
    to: body.to.trim(),
    text: body.text,
    ...(body.parseMode ? { parseMode: body.parseMode as SendBody['parseMode'] } : {}),
    ...(typeof body.disableLinkPreview === 'boolean' ? { disableLinkPreview: body.disableLinkPreview } : {}),
    ...(typeof body.silent === 'boolean' ? { silent: body.silent } : {}),
    ...(typeof body.replyToMessageId === 'number' ? { replyToMessageId: body.replyToMessageId } : {}),
    ...(typeof body.editMessageId === 'number' ? { editMessageId: body.editMessageId } : {}),
  };
}
