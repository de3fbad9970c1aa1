/**
 * pcap-filter expressions the classic-BPF tests compile with tcpdump (disassembly) and run over captures (match
 * sets). They cover every primitive family of pcap-filter(7) that compiles for Ethernet without a live interface:
 * link, network and transport protocols, hosts, nets, ports, port ranges, lengths, byte-offset arithmetic (which
 * uses X, scratch memory and every ALU operation), VLAN/MPLS/PPPoE encapsulation, and boolean combinations.
 */
const PRIMITIVES = [
  'ip', 'ip6', 'arp', 'rarp', 'tcp', 'udp', 'icmp', 'icmp6', 'igmp', 'sctp', 'vlan', 'mpls', 'pppoed', 'pppoes',
  'ether broadcast', 'ether multicast', 'ip multicast', 'ip6 multicast', 'atalk', 'decnet', 'stp', 'ipx', 'netbeui',
  'host 127.0.0.1', 'src host 10.0.0.1', 'dst host 10.0.0.1', 'host 192.168.1.63', 'ip6 host ::1', 'host fe80::1',
  'net 10.0.0.0/8', 'src net 192.168.0.0/16', 'dst net 172.16.0.0 mask 255.240.0.0', 'ip6 net fe80::/10',
  'port 80', 'src port 53', 'dst port 8080', 'tcp port 443', 'udp port 53', 'sctp port 9', 'port 0', 'port 65535',
  'portrange 1000-2000', 'tcp portrange 1-1023', 'udp src portrange 5000-5100', 'dst portrange 8000-8080',
  'less 100', 'greater 1000', 'len > 64', 'len >= 100 and len <= 200', 'len = 60', 'len != 1514',
  'ip proto 47', 'ip proto \\tcp', 'ip6 proto 58', 'proto 17', 'ip6 protochain 6', 'ip protochain 17',
  'ether host 00:11:22:33:44:55', 'ether src 00:11:22:33:44:55', 'ether dst ff:ff:ff:ff:ff:ff', 'ether proto 0x88cc',
  'ether proto \\arp', 'ether[0] & 1 != 0', 'ether[12:2] = 0x0800',
  'tcp[tcpflags] & tcp-syn != 0', 'tcp[tcpflags] & (tcp-syn|tcp-fin) != 0', 'tcp[tcpflags] == tcp-ack',
  'tcp[13] & 2 != 0', 'tcp[13] = 0x18', 'icmp[icmptype] = icmp-echo', 'icmp[icmptype] != icmp-echoreply',
  'icmp6[icmp6type] = icmp6-echo', 'udp[8:2] = 0x1234', 'udp[4:2] > 100', 'ip[8] < 64', 'ip[2:2] > 576',
  'ip[6:2] & 0x1fff = 0', 'ip[0] & 0xf > 5', 'ip[1] & 0xfc = 0xb8', 'ip[9] = 6 and ip[16] = 127',
  'tcp[((tcp[12:1] & 0xf0) >> 2):4] = 0x47455420', 'ip[2:2] - ((ip[0] & 0xf) << 2) - ((tcp[12] & 0xf0) >> 2) != 0',
  'ip[2:2] * 2 > 100', 'ip[2:2] / 2 > 100', '(ip[2:2] - 20) % 4 = 0', 'ip[2:2] << 1 > 100', 'ip[2:2] >> 1 > 100',
  'ip[1] ^ 0xff = 0', 'ip[1] | 3 = 3', 'ip[2:2] + ip[0] > 100', 'ip[2:2] - ip[0] < 1000', 'ip[2:2] * ip[8] > 1000',
  'ip[2:2] / ip[8] > 10', 'ip[2:2] % ip[8] = 1', 'ip[2:2] & ip[8] != 0', 'ip[2:2] | ip[8] != 0', 'ip[0] << ip[1] > 0',
  'ip[0] >> ip[1] > 0', 'ip[0] ^ ip[1] = 0', 'len - 14 > ip[2:2]', 'ip[4:4] > 0x7fffffff', 'ip[12:4] = 0xc0a80001',
  'vlan 100', 'vlan and ip', 'vlan 10 and tcp port 22', 'mpls 5', 'mpls and ip', 'pppoes 0x27 and ip',
  'ip and tcp port 8080', 'ip and tcp dst port 8080', 'tcp dst port 7070', 'tcp and dst port 7070',
  'tcp and (port 80 or port 443)', 'host 10.1.1.1 and not port 22', 'not arp and not icmp', 'not (tcp or udp)',
  'udp and (port 53 or port 67 or port 123)', 'src 10.0.0.1 and dst 10.0.0.2', 'src or dst host 127.0.0.1',
  'tcp src port 8080 or tcp dst port 8080', 'ip and not net 127.0.0.0/8', 'icmp or icmp6', 'tcp[tcpflags] & tcp-rst != 0',
  'ether src 00:11:22:33:44:55 or host 10.0.0.1',
  'ip and udp and dst port 514 and ip[8] > 1', 'ip6 and tcp and port 80', 'ip6 and udp', 'ip6[6] = 17',
  'ip6[40] = 128', 'ip and tcp and tcp[20] = 0x16', 'dst host 224.0.0.251 and udp port 5353',
  '(tcp[12] >> 4) > 5', 'tcp[2:2] > 1023 and tcp[0:2] > 1023', 'ether[6:4] = 0 and ether[10:2] = 0',
  'llc', 'iso', 'clnp', 'esis', 'isis', 'ether host 00:11:22:33:44:55 and not ip',
];

/** Each expression, and again with tcpdump's optimizer off (-O): unoptimized code uses st/ldx M[]/tax/txa heavily. */
export const EXPRESSIONS: ReadonlyArray<{ readonly expression: string; readonly optimize: boolean }> = [
  ...PRIMITIVES.map((expression) => ({ expression, optimize: true })),
  ...PRIMITIVES.map((expression) => ({ expression, optimize: false })),
];
