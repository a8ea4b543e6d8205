/**
 * Who a Campaign sends to, as a pure function of its spec and its ConfigMaps' text: every list normalized
 * into one ordered set of recipient keys (crds/campaign-ledger.ts), duplicates removed and counted, then cut
 * into slices. Recipients added later are appended as new slices, so a slice's recipients never change and
 * a ledger index always means the same recipient.
 */
import {
  chat,
  parseRecipientLine,
  recipientKey,
  username,
  type CampaignSpec,
  type Recipient,
} from '../../crds/index.js';

/** Most recipients per CampaignSlice: big enough that 1,000,000 fit 1,000 slices. */
export const SLICE_SIZE = 1000;
const MIN_SLICE_SIZE = 50;

/**
 * Slices small enough that every sender gets several (work moves between senders a slice at a time), but
 * never more than SLICE_SIZE: 1,000 recipients over 3 senders make 12 slices, 1,000,000 over 10 make 1,000.
 */
export function sliceSizeFor(recipients: number, senders: number): number {
  return Math.min(SLICE_SIZE, Math.max(MIN_SLICE_SIZE, Math.ceil(recipients / Math.max(1, 4 * senders))));
}

export interface RecipientPlan {
  /** Normalized recipient keys, in list order (usernames, phones, ids, chats, then each ConfigMap's lines). */
  keys: string[];
  /** Entries dropped because they were listed before. */
  duplicates: number;
  /** ConfigMap references that could not be read, as "name/key" (nothing is sent until they exist). */
  missing: string[];
}

/** `readConfigMap(name, key)`: the key's text, or undefined when the ConfigMap or key does not exist. */
export function planRecipients(
  spec: CampaignSpec['recipients'],
  readConfigMap: (name: string, key: string) => string | undefined,
): RecipientPlan {
  const seen = new Set<string>();
  const keys: string[] = [];
  let duplicates = 0;
  const add = (r: Recipient | undefined): void => {
    if (!r) return;
    const key = recipientKey(r);
    if (seen.has(key)) {
      duplicates++;
      return;
    }
    seen.add(key);
    keys.push(key);
  };
  for (const u of spec.usernames ?? []) add(username(u));
  for (const p of spec.phoneNumbers ?? []) add({ kind: 'phone', value: p });
  for (const id of spec.userIds ?? []) add({ kind: 'userId', value: String(id) });
  for (const c of spec.chats ?? []) add(chat(c));
  const missing: string[] = [];
  for (const ref of spec.configMapRefs ?? []) {
    const key = ref.key ?? 'recipients';
    const text = readConfigMap(ref.name, key);
    if (text === undefined) {
      missing.push(`${ref.name}/${key}`);
      continue;
    }
    for (const line of text.split('\n')) add(parseRecipientLine(line));
  }
  return { keys, duplicates, missing };
}

/**
 * The slices to create for `keys` beyond the ones already sliced (`sliced` keys in existing slices, which
 * keep theirs), numbered from `nextIndex`.
 */
export function newSlices(
  keys: readonly string[],
  sliced: ReadonlySet<string>,
  nextIndex: number,
  size = SLICE_SIZE,
): Array<{ index: number; keys: string[] }> {
  const fresh = keys.filter((k) => !sliced.has(k));
  const slices: Array<{ index: number; keys: string[] }> = [];
  for (let i = 0; i < fresh.length; i += size)
    slices.push({ index: nextIndex + slices.length, keys: fresh.slice(i, i + size) });
  return slices;
}

/** The name of slice `index` of `campaign` (sortable, and within a DNS subdomain for any campaign name). */
export function sliceName(campaign: string, index: number): string {
  return `${campaign.slice(0, 240)}-${String(index).padStart(5, '0')}`;
}
