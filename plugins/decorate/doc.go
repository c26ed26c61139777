// Package decorate holds DecorateFilter: it enriches and tidies parsed
// packets, in this order: GeoIP (country and city of an IP attribute),
// rename, delete, normalise (lower-case, trim), numeric range buckets,
// currency conversion by a configured rate table, and a time-based index
// name (day, week or month of the event time) for ESOutput.
//
// Contract:
//  1. Process changes the packet in place (copy-on-write through
//     FilterContext.Writable) and always emits it; a missing or
//     ill-typed field leaves the packet as it is for that step (counted in
//     Counters.Skipped), never drops it.
//  2. GeoIP lookups go through the GeoIP interface. The built-in database
//     format is a CSV of IP ranges ("start_ip,end_ip,country,city", IPv4
//     or IPv6, sorted or not), loaded at construction and searched by
//     binary search. `format: mmdb` reads a MaxMind DB file (GeoIP2 or
//     GeoLite2 Country/City: country.iso_code, else
//     registered_country.iso_code, and city.names[language]) with
//     github.com/oschwald/maxminddb-golang; the file is read into memory at
//     construction, and decoded records are cached per database record
//     (bounded), so repeated lookups allocate nothing. Reload the config
//     to pick up a new database file.
//  3. Steady state allocates nothing per packet (the index name is cached
//     per bucket; GeoIP results are the database's own strings).
//
// Process is called from one goroutine; Counters may be read from any.
package decorate
