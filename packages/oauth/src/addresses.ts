import ipaddr from 'ipaddr.js';

/**
 * The key a limiter counts a client address under: an IPv4 address as it is, an IPv6 address by its
 * /64 (one subscriber usually holds a whole /64, so counting /128s would give one attacker 2^64
 * fresh addresses). An IPv4-mapped IPv6 address counts as its IPv4 address.
 */
export const clientAddressKey = (address: string): string => {
  if (!ipaddr.isValid(address)) return address;
  let parsed = ipaddr.parse(address);
  if (parsed.kind() === 'ipv6' && (parsed as ipaddr.IPv6).isIPv4MappedAddress())
    parsed = (parsed as ipaddr.IPv6).toIPv4Address();
  if (parsed.kind() === 'ipv4') return parsed.toString();
  const parts = (parsed as ipaddr.IPv6).parts.slice(0, 4);
  return `${parts.map((p) => p.toString(16)).join(':')}::/64`;
};
