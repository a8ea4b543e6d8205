/**
 * Acting as the simulated Telegram from a shell (demo, debugging): inspect a world directory and change
 * it while runtime processes use it. Every command goes through the same World API the tests use.
 *
 *   node dist/runtime/simulator/cli.js [--world <dir>] <command> [args...]
 *   (the world directory defaults to $TDLIB_SIMULATOR_WORLD)
 */
import { copyFileSync } from 'node:fs';
import { extname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ensureDir } from './store/files.js';
import { loadWorldFile, qrTokenOf, World, WORLD_FILE_NAMES } from './world.js';
import { WorldConfigError, type UserRef } from './world-schema.js';

const USAGE = `usage: simulator [--world <dir>] <command> [args]
  validate <world-file>                 check a world file; one line per problem, naming the field
  init <dir> <world-file>               create a world directory from a world file (state starts empty)
  qr                                    QR logins waiting for another device
  confirm-qr <link|token> <account>     confirm a QR login as <account> (id, @username or +phone)
  block <user> <target> | unblock <user> <target>
  deactivate <user> [true|false]        delete (or restore) an account
  start-bot <user> <bot>                the user presses Start in the bot's chat
  send <user> <account> <text>          a user who is not an account writes to an account
  edit <user> <account> <message_id> <text>
                                        that user edits a message it sent to the account
  chat-member <chat> <user> admin|member|none
                                        change a user's role in a public supergroup or channel
  proxy <server>:<port> dead|alive      mark a proxy dead or alive for every client
  faults '<json>'                       replace fault settings, e.g. '{"disconnected":true}'
  terminate <account>                   end every session of an account ("terminate session")
  deliveries [--count]                  delivered messages (JSON lines), or their number
  sessions | events                     server-side sessions / login and kill events (JSON lines)
  reset                                 drop every change made with this tool or the World API`;

function ref(value: string | undefined): UserRef {
  if (value === undefined) throw new UsageError('missing user');
  return /^[0-9]+$/.test(value) ? Number(value) : value;
}

class UsageError extends Error {}

function printLines(values: readonly unknown[]): void {
  for (const value of values) process.stdout.write(JSON.stringify(value) + '\n');
}

export function main(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): number {
  const args = [...argv];
  let worldDir = env.TDLIB_SIMULATOR_WORLD;
  const at = args.indexOf('--world');
  if (at >= 0) {
    worldDir = args[at + 1];
    args.splice(at, 2);
  }
  const [command, ...rest] = args;
  try {
    if (command === 'validate') {
      const file = rest[0];
      if (file === undefined) throw new UsageError('validate needs a file');
      const world = loadWorldFile(file);
      process.stdout.write(`${file}: valid, ${world.users.length} users\n`);
      return 0;
    }
    if (command === 'init') {
      const [dir, file] = rest;
      if (dir === undefined || file === undefined) throw new UsageError('init needs <dir> <world-file>');
      loadWorldFile(file);
      ensureDir(dir);
      const name = extname(file) === '.json' ? 'world.json' : 'world.yaml';
      copyFileSync(file, join(dir, name));
      World.open(dir).resetOverrides();
      process.stdout.write(`world ready in ${dir} (${WORLD_FILE_NAMES.join('/')})\n`);
      return 0;
    }
    if (command === undefined || command === 'help' || command === '--help') {
      process.stdout.write(USAGE + '\n');
      return command === undefined ? 2 : 0;
    }
    if (worldDir === undefined || worldDir === '')
      throw new UsageError('set --world <dir> or TDLIB_SIMULATOR_WORLD');
    const world = World.open(worldDir);
    switch (command) {
      case 'qr':
        printLines(
          world
            .pendingQrLogins()
            .map((t) => ({ link: `tg://login?token=${t.token}`, expires_at: t.expires_at })),
        );
        return 0;
      case 'confirm-qr':
        world.confirmQrLogin(qrTokenOf(rest[0] ?? ''), ref(rest[1]));
        return 0;
      case 'block':
        world.blockUser(ref(rest[0]), ref(rest[1]));
        return 0;
      case 'unblock':
        world.unblockUser(ref(rest[0]), ref(rest[1]));
        return 0;
      case 'deactivate':
        world.setDeactivated(ref(rest[0]), rest[1] !== 'false');
        return 0;
      case 'start-bot':
        world.startBot(ref(rest[0]), ref(rest[1]));
        return 0;
      case 'send': {
        const [from, to, ...words] = rest;
        if (words.length === 0) throw new UsageError('send <user> <account> <text>');
        const sent = world.sendMessage(ref(from), ref(to), words.join(' '));
        process.stdout.write(`message ${sent.message_id} ${sent.status}\n`);
        return 0;
      }
      case 'edit': {
        const [from, to, id, ...words] = rest;
        if (id === undefined || !/^[0-9]+$/.test(id) || words.length === 0)
          throw new UsageError('edit <user> <account> <message_id> <text>');
        const edited = world.editMessage(ref(from), ref(to), Number(id), words.join(' '));
        process.stdout.write(`message ${edited.message_id} edited at ${edited.edit_date}\n`);
        return 0;
      }
      case 'chat-member': {
        const [chat, user, role] = rest;
        if (chat === undefined || (role !== 'admin' && role !== 'member' && role !== 'none'))
          throw new UsageError('chat-member <chat> <user> admin|member|none');
        world.setChatMember(/^-?[0-9]+$/.test(chat) ? Number(chat) : chat, ref(user), role);
        return 0;
      }
      case 'proxy': {
        const match = /^(.+):([0-9]+)$/.exec(rest[0] ?? '');
        if (match === null || (rest[1] !== 'dead' && rest[1] !== 'alive'))
          throw new UsageError('proxy <server>:<port> dead|alive');
        world.setProxyDead(match[1] ?? '', Number(match[2]), rest[1] === 'dead');
        return 0;
      }
      case 'faults':
        world.setFaults(JSON.parse(rest[0] ?? '{}') as Parameters<World['setFaults']>[0]);
        return 0;
      case 'terminate':
        process.stdout.write(`${world.terminateSessions(ref(rest[0]))} session(s) ended\n`);
        return 0;
      case 'deliveries': {
        const deliveries = world.deliveries();
        if (rest.includes('--count')) process.stdout.write(`${deliveries.length}\n`);
        else printLines(deliveries);
        return 0;
      }
      case 'sessions':
        printLines(world.sessions());
        return 0;
      case 'events':
        printLines(world.events());
        return 0;
      case 'reset':
        world.resetOverrides();
        return 0;
      default:
        throw new UsageError(`unknown command ${command}`);
    }
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`${error.message}\n${USAGE}\n`);
      return 2;
    }
    if (error instanceof WorldConfigError) {
      process.stderr.write(`${error.message}\n`);
      return 1;
    }
    process.stderr.write(`${error instanceof Error ? error.message : String(error)}\n`);
    return 1;
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = main(process.argv.slice(2));
}
