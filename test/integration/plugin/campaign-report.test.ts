/**
 * `kubectl telegram campaign report` against the real apiserver of the integration tier. The test plays the
 * operator (creates CampaignSlices labelled and owned by the Campaign, with encoded recipients) and the
 * runtime (writes each slice's ledger, reason and sender tables through the status subresource), then runs
 * the plugin as a process and reads what it prints.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { pathToFileURL } from 'node:url';
import {
  API_VERSION,
  GROUP,
  Ledger,
  RecipientState,
  encodeRecipients,
  type Campaign,
  type CampaignSlice,
  type LedgerEntry,
  type RecipientStateValue,
} from '../../../crds/index.js';
import { CampaignResource, CampaignSliceResource } from '../../../crds/resources.js';
import { sliceName } from '../../../operator/campaign/plan.js';
import { RestClient } from '../../../operator/kube/client.js';
import { createRegistry } from '../../../operator/kube/metrics.js';
import { waitFor } from '../../cluster/wait.js';
import { restrictedKubeconfig as restrictedKubeconfigFor } from '../../support/restricted-kubeconfig.js';
import { adminKubeConfig, createTestNamespace, testCluster } from '../../support/cluster.js';
import { installCrds } from '../../support/crds.js';

const shim = resolve('bin/kubectl-telegram');
const LABEL_CAMPAIGN = `${GROUP}/campaign`;
const HEADER = 'recipient,sender,outcome,reason,time';
/** 2024-05-01T12:00:00Z */
const T0 = 1_714_564_800;

interface PluginRun {
  child: ChildProcess;
  exit: Promise<number | null>;
  stdout: () => string;
  stderr: () => string;
  /** Peak resident set (VmHWM, kB) the plugin's node process reported as it exited. */
  peakRssKb: () => number;
}

const running = new Set<ChildProcess>();

describe('kubectl telegram campaign report against a real apiserver', () => {
  const kc = adminKubeConfig();
  const kubeconfig = testCluster().kubeconfigPath;
  const client = new RestClient(kc, { registry: createRegistry() });
  const work = mkdtempSync(join(tmpdir(), 'campaign-report-'));
  // Loaded into the plugin's node through NODE_OPTIONS: writes the process's peak RSS on exit, when
  // /proc/<pid> of a child the test only polls could already be gone.
  const hwmHook = join(work, 'hwm.mjs');
  writeFileSync(
    hwmHook,
    `import { readFileSync, writeFileSync } from 'node:fs';
process.on('exit', () => {
  const m = /VmHWM:\\s+(\\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
  if (m && process.env.PLUGIN_HWM_FILE) writeFileSync(process.env.PLUGIN_HWM_FILE, m[1]);
});
`,
  );
  let runs = 0;
  let namespace = '';
  let otherNamespace = '';

  const run = (
    args: string[],
    options: { kubeconfig?: string; namespace?: string; nodeOptions?: string } = {},
  ): PluginRun => {
    const hwmFile = join(work, `hwm-${runs++}`);
    const child = spawn(
      shim,
      [...args, '--kubeconfig', options.kubeconfig ?? kubeconfig, '-n', options.namespace ?? namespace],
      {
        env: {
          ...process.env,
          KUBECONFIG: '',
          NODE_OPTIONS: [
            process.env.NODE_OPTIONS,
            options.nodeOptions,
            `--import=${pathToFileURL(hwmHook).href}`,
          ]
            .filter(Boolean)
            .join(' '),
          PLUGIN_HWM_FILE: hwmFile,
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    running.add(child);
    let stdout = '';
    let stderr = '';
    child.stdout?.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr?.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const exit = new Promise<number | null>((resolveExit) =>
      child.once('exit', (code) => {
        running.delete(child);
        resolveExit(code);
      }),
    );
    return {
      child,
      exit,
      stdout: () => stdout,
      stderr: () => stderr,
      peakRssKb: () => Number(readFileSync(hwmFile, 'utf8')),
    };
  };

  const exitOf = (plugin: PluginRun, timeoutMs = 60_000): Promise<number | null> =>
    waitFor(
      'the plugin to exit',
      () => ((plugin.child.exitCode ?? plugin.child.signalCode) !== null ? plugin.exit : undefined),
      { timeoutMs, onTimeout: () => plugin.stdout().slice(-2000) + plugin.stderr() },
    );

  const createCampaign = (ns: string, name: string): Promise<Campaign> =>
    client.create<Campaign>(CampaignResource, {
      apiVersion: API_VERSION,
      kind: 'Campaign',
      metadata: { name, namespace: ns },
      spec: {
        senders: { names: ['sender-a', 'sender-b'] },
        message: { text: 'hello' },
        recipients: { usernames: ['placeholder_user'] },
      },
    } as Campaign);

  interface LedgerRow {
    i: number;
    state: RecipientStateValue;
    reason?: string;
    sender?: string;
    attempts?: number;
    at?: number;
  }

  /** The operator's part (spec, labels, owner), then the runtime's (status: ledger and its tables). */
  const createSlice = async (
    campaign: Campaign,
    name: string,
    index: number,
    keys: string[],
    entries: LedgerRow[],
    { owned = true }: { owned?: boolean } = {},
  ): Promise<void> => {
    const ns = campaign.metadata.namespace ?? '';
    const campaignName = campaign.metadata.name ?? '';
    await client.create<CampaignSlice>(CampaignSliceResource, {
      apiVersion: API_VERSION,
      kind: 'CampaignSlice',
      metadata: {
        name,
        namespace: ns,
        labels: { [LABEL_CAMPAIGN]: campaignName },
        ...(owned
          ? {
              ownerReferences: [
                {
                  apiVersion: API_VERSION,
                  kind: 'Campaign',
                  name: campaignName,
                  uid: campaign.metadata.uid ?? '',
                  controller: true,
                },
              ],
            }
          : {}),
      },
      spec: {
        campaign: campaignName,
        index,
        recipients: encodeRecipients(keys),
        count: keys.length,
        sender: 'sender-a',
        assignment: 1,
        messagesPerMinute: 20,
      },
    });
    const ledger = Ledger.empty(keys.length);
    for (const e of entries) {
      const entry: LedgerEntry = {
        state: e.state,
        reason: e.reason === undefined ? 0 : ledger.reasonIndex(e.reason),
        attempts: e.attempts ?? (e.sender === undefined ? 0 : 1),
        sender: e.sender === undefined ? 0 : ledger.senderIndex(e.sender),
        at: e.at ?? 0,
      };
      ledger.set(e.i, entry);
    }
    await client.mergePatch(
      CampaignSliceResource,
      ns,
      name,
      {
        status: {
          assignment: 1,
          sender: 'sender-a',
          epoch: 1,
          ledger: ledger.encode(),
          reasons: ledger.reasons,
          senders: ledger.senders,
        },
      },
      { subresource: 'status', fieldManager: 'test-runtime' },
    );
  };

  beforeAll(async () => {
    await installCrds(kc);
    namespace = await createTestNamespace(kc, 'report');
    otherNamespace = await createTestNamespace(kc, 'report-other');
  });

  afterEach(() => {
    for (const child of running) child.kill('SIGKILL');
  });

  afterAll(async () => {
    await client.close();
  });

  describe('a campaign of three slices', () => {
    let spring: Campaign;
    // Expected lines, in index order then recipient order.
    const slice0 = [
      '@alice_example,sender-a,Sent,,2024-05-01T12:00:00Z',
      '+12025550123,sender-b,Failed,UserPrivacyRestricted,2024-05-01T12:00:05Z',
      '"hello, ""world""",,Invalid,,',
    ];
    const slice1 = [
      '424242,sender-b,InFlight,,2024-05-01T12:01:00Z',
      'chat:@news_channel,sender-a,InDoubt,Timeout,2024-05-01T12:02:00Z',
      '@bob_example,,Pending,,',
    ];
    const slice2 = [
      '@carol_example,sender-b,Pending,PeerFlood,2024-05-01T13:00:00Z',
      '+447700900123,,Pending,,',
    ];

    beforeAll(async () => {
      spring = await createCampaign(namespace, 'spring');
      // Created out of index order, and named so that the apiserver's name order is not index order
      // either (spring-a is index 2, spring-b index 0, spring-c index 1): the report must go by spec.index.
      await createSlice(
        spring,
        'spring-a',
        2,
        ['u:carol_example', 'p:+447700900123'],
        [{ i: 0, state: RecipientState.Pending, reason: 'PeerFlood', sender: 'sender-b', at: T0 + 3600 }],
      );
      await createSlice(
        spring,
        'spring-b',
        0,
        ['u:alice_example', 'p:+12025550123', 'x:hello, "world"'],
        [
          { i: 0, state: RecipientState.Sent, sender: 'sender-a', at: T0 },
          {
            i: 1,
            state: RecipientState.Failed,
            reason: 'UserPrivacyRestricted',
            sender: 'sender-b',
            at: T0 + 5,
          },
        ],
      );
      await createSlice(
        spring,
        'spring-c',
        1,
        ['i:424242', 'c:news_channel', 'u:bob_example'],
        [
          { i: 0, state: RecipientState.InFlight, sender: 'sender-b', attempts: 2, at: T0 + 60 },
          { i: 1, state: RecipientState.InDoubt, reason: 'Timeout', sender: 'sender-a', at: T0 + 120 },
        ],
      );

      // Not spring's: a campaign of the same name in another namespace (its slice without an owner
      // reference and numbered 3, right after spring's own, so that only the namespace keeps it out), and
      // a leftover slice of a deleted namesake (labelled spring, owned by another uid) that the garbage
      // collector has not removed yet.
      const elsewhere = await createCampaign(otherNamespace, 'spring');
      await createSlice(
        elsewhere,
        sliceName('spring', 3),
        3,
        ['u:elsewhere_user', 'p:+12025550999'],
        [{ i: 0, state: RecipientState.Sent, sender: 'sender-z', at: T0 }],
        { owned: false },
      );
      await createSlice(
        { ...spring, metadata: { ...spring.metadata, uid: '00000000-0000-4000-8000-000000000000' } },
        'spring-0-old',
        0,
        ['u:leftover_user'],
        [],
      );
    });

    it('prints every recipient once, in index order, as CSV (one slice per list request)', async () => {
      const plugin = run(['campaign', 'report', 'spring', '--chunk-size', '1']);
      expect(await exitOf(plugin)).toBe(0);
      expect(plugin.stderr()).toBe('');
      expect(plugin.stdout()).toBe([HEADER, ...slice0, ...slice1, ...slice2].join('\n') + '\n');
    });

    it('prints the same rows as JSON lines with -o json', async () => {
      const plugin = run(['campaign', 'report', 'spring', '-o', 'json']);
      expect(await exitOf(plugin)).toBe(0);
      expect(plugin.stderr()).toBe('');
      const lines = plugin.stdout().split('\n');
      expect(lines.pop()).toBe('');
      const rows = lines.map((line) => JSON.parse(line) as Record<string, string>);
      expect(rows.map((r) => r.recipient)).toEqual([
        '@alice_example',
        '+12025550123',
        'hello, "world"',
        '424242',
        'chat:@news_channel',
        '@bob_example',
        '@carol_example',
        '+447700900123',
      ]);
      expect(rows[1]).toEqual({
        recipient: '+12025550123',
        sender: 'sender-b',
        outcome: 'Failed',
        reason: 'UserPrivacyRestricted',
        time: '2024-05-01T12:00:05Z',
      });
      expect(rows[2]).toEqual({
        recipient: 'hello, "world"',
        sender: '',
        outcome: 'Invalid',
        reason: '',
        time: '',
      });
      expect(rows[5]).toEqual({
        recipient: '@bob_example',
        sender: '',
        outcome: 'Pending',
        reason: '',
        time: '',
      });
      expect(Object.keys(rows[0] ?? {})).toEqual(['recipient', 'sender', 'outcome', 'reason', 'time']);
    });

    it('reports the other namespace’s campaign of the same name only there', async () => {
      const plugin = run(['campaign', 'report', 'spring'], { namespace: otherNamespace });
      expect(await exitOf(plugin)).toBe(0);
      expect(plugin.stdout()).toBe(
        `${HEADER}\n@elsewhere_user,sender-z,Sent,,2024-05-01T12:00:00Z\n+12025550999,,Pending,,\n`,
      );
    });
  });

  it('reports a missing campaign with exit code 3, and one without slices as not planned yet', async () => {
    const missing = run(['campaign', 'report', 'nothing-here']);
    expect(await exitOf(missing)).toBe(3);
    expect(missing.stderr()).toMatch(/Campaign .*\/nothing-here not found/);
    expect(missing.stdout()).toBe('');

    await createCampaign(namespace, 'fresh');
    const fresh = run(['campaign', 'report', 'fresh']);
    expect(await exitOf(fresh)).toBe(0);
    expect(fresh.stdout()).toBe(`${HEADER}\n`);
    expect(fresh.stderr()).toMatch(/Campaign .*\/fresh has not been planned yet/);
  });

  it('names a slice it cannot decode (never its recipients), reports the rest and exits 1', async () => {
    const broken = await createCampaign(namespace, 'broken');
    await createSlice(broken, sliceName('broken', 0), 0, ['p:+12025550142'], []);
    await createSlice(broken, sliceName('broken', 1), 1, ['p:+12025550143', 'u:dave_example'], []);
    // The runtime's ledger, damaged: base64 of something that is not gzip.
    await client.mergePatch(
      CampaignSliceResource,
      namespace,
      sliceName('broken', 1),
      { status: { ledger: Buffer.from('not gzip').toString('base64') } },
      { subresource: 'status', fieldManager: 'test-runtime' },
    );
    await createSlice(broken, sliceName('broken', 2), 2, ['u:erin_example'], []);
    const plugin = run(['campaign', 'report', 'broken']);
    expect(await exitOf(plugin)).toBe(1);
    expect(plugin.stdout()).toBe(`${HEADER}\n+12025550142,,Pending,,\n@erin_example,,Pending,,\n`);
    expect(plugin.stderr()).toMatch(
      new RegExp(`CampaignSlice ${namespace}/broken-00001 \\(index 1\\) cannot be decoded`),
    );
    expect(plugin.stderr()).toMatch(/1 CampaignSlice could not be decoded/);
    expect(plugin.stderr()).not.toMatch(/12025550|dave_example/);
  });

  it('names the verb and resource RBAC refused', async () => {
    await createCampaign(namespace, 'guarded');
    const restricted = await restrictedKubeconfig('guarded');
    const plugin = run(['campaign', 'report', 'guarded'], { kubeconfig: restricted });
    expect(await exitOf(plugin)).toBe(1);
    expect(plugin.stderr()).toMatch(
      new RegExp(
        `not allowed to list campaignslices\\.${GROUP.replace(/\./g, '\\.')} in namespace ${namespace}`,
      ),
    );
    expect(plugin.stdout()).toBe('');
  });

  describe('a campaign of 50,000 recipients (50 slices of 1,000)', () => {
    const SLICES = 50;
    const PER_SLICE = 1000;
    const OUTCOMES = ['Pending', 'InFlight', 'Sent', 'Failed', 'InDoubt'];
    // Names as long as the API lets them be (accounts 63, usernames 32 characters): the most a recipient's
    // row weighs, so that holding the campaign would show in the plugin's memory.
    const SENDERS = [
      'spring-campaign-sender-account-number-one-in-the-eu-west-region',
      'spring-campaign-sender-account-number-two-in-the-eu-west-region',
    ];
    /** Recipient n (0-based over the campaign): its key, and the line the report must print for it. */
    const recipient = (n: number): { key: string; line: string; ledger?: LedgerRow } => {
      const i = n % PER_SLICE;
      if (n % 997 === 0)
        return { key: `x:line ${n}, not a recipient`, line: `"line ${n}, not a recipient",,Invalid,,` };
      const digits = String(n).padStart(7, '0');
      const key =
        [
          `u:subscriber_${digits}_newsletter`,
          `p:+1202${digits}`,
          `i:${5_000_000_000 + n}`,
          `c:community_${digits}_announce`,
        ][n % 4] ?? '';
      const text = key.startsWith('u:')
        ? `@${key.slice(2)}`
        : key.startsWith('c:')
          ? `chat:@${key.slice(2)}`
          : key.slice(2);
      const state = (n % 5) as RecipientStateValue;
      if (state === RecipientState.Pending) return { key, line: `${text},,Pending,,` };
      const sender = SENDERS[n % 2] ?? '';
      const reason = state === RecipientState.Failed ? 'PeerIdInvalid' : '';
      const at = T0 + n;
      return {
        key,
        line: `${text},${sender},${OUTCOMES[state] ?? ''},${reason},${new Date(at * 1000).toISOString().replace('.000Z', 'Z')}`,
        ledger: { i, state, sender, at, ...(reason ? { reason } : {}) },
      };
    };

    beforeAll(async () => {
      // The same process reporting 8 recipients: what the plugin takes before any campaign data.
      const tiny = await createCampaign(namespace, 'tiny');
      const few = Array.from({ length: 8 }, (_, i) => recipient(i));
      await createSlice(
        tiny,
        sliceName('tiny', 0),
        0,
        few.map((r) => r.key),
        few.flatMap((r) => (r.ledger ? [r.ledger] : [])),
      );
      const big = await createCampaign(namespace, 'big');
      // Out of index order, named as the operator names them.
      for (let k = 0; k < SLICES; k++) {
        const s = (k * 7) % SLICES;
        const rows = Array.from({ length: PER_SLICE }, (_, i) => recipient(s * PER_SLICE + i));
        await createSlice(
          big,
          sliceName('big', s),
          s,
          rows.map((r) => r.key),
          rows.flatMap((r) => (r.ledger ? [r.ledger] : [])),
        );
      }
    });

    /*
     * Peak RSS (VmHWM) of the plugin reporting 50,000 recipients, against the same plugin reporting 8.
     * The plugin's floor is ~100-135 MB (node, plus @kubernetes/client-node's ~70 MB), so the 50,000 are
     * judged by what they add to it. Both runs shrink V8's garbage slack, which any fast allocator carries
     * whether it holds anything or not (up to ~30 MB of unscavenged young generation with the default
     * 16 MB semispaces, plus promoted garbage until the next mark-compact): 1 MB semispaces, a 64 MB old
     * space (the plugin needs ~22 MB of it once loaded). Measured here, 4 runs each: streaming adds +5 to
     * +10 MB (98-102 -> 105-108 MB); the same plugin holding the campaign (listAll, every row, one write)
     * adds +32 to +38 MB, and at default flags peaks at 164-176 MB against 136-149 MB streaming. Holding
     * grows with the campaign (x20 for a million recipients), streaming does not. +20 MB sits between.
     */
    it('streams every recipient in order with a peak RSS far below holding the campaign', async () => {
      const pinned = '--max-semi-space-size=1 --max-old-space-size=64';
      const small = run(['campaign', 'report', 'tiny'], { nodeOptions: pinned });
      expect(await exitOf(small)).toBe(0);
      const baselineKb = small.peakRssKb();

      const plugin = run(['campaign', 'report', 'big'], { nodeOptions: pinned });
      expect(await exitOf(plugin)).toBe(0);
      expect(plugin.stderr()).toBe('');
      const lines = plugin.stdout().split('\n');
      expect(lines.length).toBe(SLICES * PER_SLICE + 2);
      expect(lines[0]).toBe(HEADER);
      expect(lines[lines.length - 1]).toBe('');
      for (let n = 0; n < SLICES * PER_SLICE; n++) {
        const want = recipient(n).line;
        if (lines[n + 1] !== want) expect(`line ${n + 1}: ${lines[n + 1]}`).toBe(`line ${n + 1}: ${want}`);
      }

      const peakKb = plugin.peakRssKb();
      process.stdout.write(
        `campaign report peak RSS: 8 recipients ${Math.round(baselineKb / 1024)} MB, ` +
          `50,000 recipients ${Math.round(peakKb / 1024)} MB\n`,
      );
      expect(peakKb).toBeLessThan(150 * 1024);
      expect(peakKb - baselineKb).toBeLessThan(20 * 1024);
    });

    it('exits 0 without a word when its reader stops after three lines (| head -3)', async () => {
      const plugin = run(['campaign', 'report', 'big']);
      const stdout = plugin.child.stdout;
      if (!stdout) throw new Error('no stdout');
      stdout.removeAllListeners('data');
      const first: string[] = [];
      const reader = createInterface({ input: stdout, crlfDelay: Infinity });
      await new Promise<void>((resolveLines) => {
        reader.on('line', (line) => {
          if (first.length < 3) first.push(line);
          if (first.length === 3) {
            reader.close();
            stdout.destroy();
            resolveLines();
          }
        });
      });
      expect(first).toEqual([HEADER, recipient(0).line, recipient(1).line]);
      expect(await exitOf(plugin)).toBe(0);
      expect(plugin.stderr()).toBe('');
    });
  });

  /** A ServiceAccount that may get campaigns but not list CampaignSlices. */
  function restrictedKubeconfig(probeCampaign: string): Promise<string> {
    return restrictedKubeconfigFor({
      admin: kc,
      rest: client,
      namespace,
      name: 'report-user',
      rules: [{ apiGroups: [GROUP], resources: ['campaigns'], verbs: ['get'] }],
      probe: (restricted) => restricted.get(CampaignResource, namespace, probeCampaign),
    });
  }
});
