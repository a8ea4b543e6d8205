import { stopForJest } from './global-setup.js';

export default async function teardown(): Promise<void> {
  await stopForJest();
}
