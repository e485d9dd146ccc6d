import { describe, expect, it } from 'vitest';
import { clientAddressKey } from '../src/addresses.ts';

describe('the address a limiter counts', () => {
  it('counts an IPv6 client by its /64, so one subscriber cannot rotate through 2^64 addresses', () => {
    expect(clientAddressKey('2001:db8:1:2:aaaa::1')).toBe('2001:db8:1:2::/64');
    expect(clientAddressKey('2001:db8:1:2:ffff:ffff:ffff:ffff')).toBe('2001:db8:1:2::/64');
    expect(clientAddressKey('2001:db8:1:3::1')).not.toBe(clientAddressKey('2001:db8:1:2::1'));
  });

  it('counts IPv4, mapped or not, by the address', () => {
    expect(clientAddressKey('198.51.100.7')).toBe('198.51.100.7');
    expect(clientAddressKey('::ffff:198.51.100.7')).toBe('198.51.100.7');
    expect(clientAddressKey('unknown')).toBe('unknown');
  });
});
