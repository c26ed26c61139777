// Package pack holds the packet and its life cycle: Packet (reusable
// buffers, typed attributes, source position, holder count), Pool (the
// bounded set of packets an input owns), Releaser (bulk recycling) and
// Window (a stream's in-flight window and low watermark).
//
// # Ownership
//
// A packet is owned by its holders; the holder count says how many.
//
//  1. Pool.Get hands out a packet with one holder, the caller. Only the
//     pool's owner goroutine calls Get/TryGet (single consumer); any
//     goroutine may recycle packets into it.
//  2. The engine calls Window.Track before a packet leaves its input: the
//     packet gets its sequence number and is tied to the window. Its
//     position (Pos, FlagBoundary) is read when it is done, so it must not
//     change while the packet is in flight.
//  3. At a fan-out point the engine adds one holder per extra branch
//     (Retain) before any branch sees the packet.
//  4. Each holder that is done calls Release (or Releaser.Release). The
//     last one recycles the packet: the window learns the sequence is
//     done, a derived packet releases its parent, and the packet, reset
//     (every field cleared, buffers larger than MaxPacketBytes dropped,
//     and grown buffers dropped once the pool keeps MaxBytes: Resident),
//     goes back to its pool. After its last Release a holder must not
//     touch the packet: it may already carry someone else's data.
//  5. A packet with more than one holder is shared: it must not be
//     changed. Filters get a private copy first (CloneTo), which moves
//     their hold from the original to the copy.
//  6. Derive ties a new packet to a parent: the parent is done only when
//     every derived packet is.
//
// Releasing more often than retaining panics with "BUG:", and so does
// returning a packet to a pool twice.
//
// # Goroutine safety
//
// Packet fields are not synchronised: one holder writes a packet before
// it is published (through a ring, which orders the writes), and shared
// packets are read-only. Pool.Get/TryGet: the owner goroutine only; the
// rest of Pool is safe from any goroutine. Releaser: one goroutine, which
// calls Flush before it blocks. Window: Track, Mark and Publish from the
// stream's producer goroutine; Done, DoneRange, Advance, Checkpoint and
// the read methods from any goroutine.
//
// # Watermark
//
// Window keeps, per slot, the exclusive end of a run of done sequences;
// Advance moves the low watermark over runs and takes the newest
// boundary position below it as the checkpoint. Acks may arrive in any
// order; the watermark never passes a sequence that is not done.
package pack
