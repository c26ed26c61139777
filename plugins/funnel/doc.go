// Package funnel holds Funnel: dimensional funnel analysis. Per user it
// follows an ordered list of action steps (view -> cart -> buy) that must
// happen within a time limit of event time, and counts how many journeys
// reach each step, per interval (of the journey's first step) and per
// value of each dimension (country, platform ... of the first step's
// event).
//
// Contract:
//  1. Time is event time: the packet's Ts, or time_field parsed with
//     time_layout. Step events are held in a heap and applied in
//     (time, user, step, dimensions) order once the watermark (newest
//     event time minus `lateness`) passes them, so any arrival order
//     whose disorder stays within `lateness` gives the same counts.
//     Events older than the watermark are dropped as "late" and counted.
//  2. A journey starts at a user's first step and ends when the user
//     reaches the last step, when `within` has passed since the first
//     step (a step exactly `within` later still counts), or when evicted.
//     While it runs: the next step counts (step i is counted once per
//     journey); a step already reached is a repeat (not counted again,
//     the first step included: it does not restart the journey); a step
//     further ahead is out of order and not counted (the journey goes on
//     and may still count it in order later). Steps of a user with no
//     journey running are counted as no_entry and ignored.
//  3. Counts per interval: step i's count is the journeys started in the
//     interval that reached step i; conversion = count / entered, and
//     step_conversion = count / previous step's count. An interval is
//     final once the watermark passes its end plus `within`: then its
//     journeys cannot progress. Final intervals are emitted on the tick,
//     once, as new packets (sorted by interval, total first, then each
//     dimension's values in order): attributes type=funnel,
//     interval_start, [dimension, value], entered, completed, conversion,
//     step_1..step_N, partial; payload JSON of the same with per-step
//     conversions; Ts = the interval start. At shutdown
//     (engine.FilterFlusher) every pending event is applied and every
//     interval not yet emitted is emitted, with partial=true when the
//     data ended before the interval's time was up.
//  4. Raw packets are consumed (their positions become committable); a
//     packet whose action is no step is consumed and counted (not_step);
//     step packets without the user are dropped ("no_user"), with a bad
//     or missing time_field "bad_time", late ones "late".
//  5. State is bounded: at most max_users journeys (beyond, the one that
//     started first ends early: evicted), at most max_pending events
//     waiting for order (beyond, the oldest are applied early and the
//     watermark moves up to them), at most max_dimension_values values
//     per dimension (others count as "_other"; an absent attribute is
//     "_none"), and the newest `keep` emitted intervals. State is in
//     memory: a restart loses the journeys in progress.
//  6. Query (engine.Queryable: GET /api/v1/plugins/{name}/query,
//     dbc query NAME) returns the intervals kept, in-progress ones
//     included (final=false), filtered by dimension, value, from/to, or
//     summed (sum=true). Query and Counters are safe from any goroutine;
//     Process, Tick and FlushFilter run on the filter's goroutine (the
//     counts they change are guarded by the filter's mutex).
package funnel
