/**
 * Writes small MaxMind DB files with MaxMind's own writer (Debian's libmaxmind-db-writer-perl),
 * so ident/geoip is tested against the real format without downloading GeoLite2.
 */
import { spawnSync } from "node:child_process";

/** A network and its record, e.g. `["81.2.69.0/24", { country: { iso_code: "GB" } }]`. */
export type MmdbEntry = [network: string, record: Record<string, unknown>];

const WRITER = String.raw`
use strict; use warnings;
use JSON::PP; use MaxMind::DB::Writer::Tree;
my ($file, $type) = @ARGV;
my $entries = decode_json(do { local $/; <STDIN> });
my %types = (
  city => 'map', continent => 'map', country => 'map', registered_country => 'map', location => 'map',
  names => 'map', traits => 'map', en => 'utf8_string', code => 'utf8_string', iso_code => 'utf8_string',
  geoname_id => 'uint32', latitude => 'double', longitude => 'double', accuracy_radius => 'uint16',
  autonomous_system_number => 'uint32', autonomous_system_organization => 'utf8_string',
);
my $tree = MaxMind::DB::Writer::Tree->new(
  ip_version => 6, record_size => 24, database_type => $type, languages => ['en'],
  description => { en => 'qpsmtpd.ts test data' },
  map_key_type_callback => sub { $types{ $_[0] } // die "no type for $_[0]" },
);
$tree->insert_network($_->[0], $_->[1]) for @$entries;
open my $fh, '>:raw', $file or die "$file: $!";
$tree->write_tree($fh);
close $fh or die;
`;

/** Writes `file` as a MaxMind DB of `type` (`GeoLite2-City`, `GeoLite2-ASN`, …). */
export function writeMmdb(file: string, type: string, entries: readonly MmdbEntry[]): void {
  const r = spawnSync("perl", ["-e", WRITER, file, type], { input: JSON.stringify(entries), encoding: "utf8" });
  if (r.status !== 0) throw new Error(`MaxMind::DB::Writer failed: ${r.stderr}`);
}
