import { ExpiringCache } from '../../../operator/gateway/access.js';

describe('ExpiringCache', () => {
  it('forgets an entry when its time is up', () => {
    let now = 0;
    const cache = new ExpiringCache<string>(10, () => now);
    cache.set('a', 'allowed', 100);
    now = 99;
    expect(cache.get('a')).toBe('allowed');
    now = 100;
    expect(cache.get('a')).toBeUndefined();
  });

  it('keeps at most its size, dropping the oldest first', () => {
    const cache = new ExpiringCache<number>(2, () => 0);
    cache.set('a', 1, 1000);
    cache.set('b', 2, 1000);
    cache.set('a', 3, 1000); // refreshed: now the newest
    cache.set('c', 4, 1000);
    expect(cache.get('b')).toBeUndefined();
    expect(cache.get('a')).toBe(3);
    expect(cache.get('c')).toBe(4);
    expect(cache.size).toBe(2);
  });
});
