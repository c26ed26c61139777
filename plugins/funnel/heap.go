package funnel

// event is one step event waiting to be applied in event-time order.
type event struct {
	ts   int64
	user string
	step int32
	dims [maxDims]string // dimension values (first steps only)
}

// less orders events by time, then by user, step and dimensions, so that
// the same events give the same result in any arrival order.
func (a *event) less(b *event) bool {
	if a.ts != b.ts {
		return a.ts < b.ts
	}
	if a.user != b.user {
		return a.user < b.user
	}
	if a.step != b.step {
		return a.step < b.step
	}
	for i := range a.dims {
		if a.dims[i] != b.dims[i] {
			return a.dims[i] < b.dims[i]
		}
	}
	return false
}

// eventHeap is a min-heap of events (by value: no allocation per event
// once the slice has grown).
type eventHeap []event

func (h *eventHeap) push(e event) {
	*h = append(*h, e)
	s := *h
	i := len(s) - 1
	for i > 0 {
		p := (i - 1) / 2
		if !s[i].less(&s[p]) {
			break
		}
		s[i], s[p] = s[p], s[i]
		i = p
	}
}

func (h *eventHeap) pop() event {
	s := *h
	top := s[0]
	n := len(s) - 1
	s[0] = s[n]
	s[n] = event{}
	s = s[:n]
	*h = s
	i := 0
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		m := l
		if r := l + 1; r < n && s[r].less(&s[l]) {
			m = r
		}
		if !s[m].less(&s[i]) {
			break
		}
		s[i], s[m] = s[m], s[i]
		i = m
	}
	return top
}

// journey is one user's progress through the funnel.
type journey struct {
	user  string
	start int64
	level int // steps reached: 1 .. len(steps)-1 while in progress
	ivl   *interval
	dims  [maxDims]string
	idx   int // position in journeyHeap
}

// journeyHeap orders journeys by start (then user): the first ends first.
type journeyHeap []*journey

func (h journeyHeap) Len() int { return len(h) }
func (h journeyHeap) Less(i, j int) bool {
	if h[i].start != h[j].start {
		return h[i].start < h[j].start
	}
	return h[i].user < h[j].user
}
func (h journeyHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].idx, h[j].idx = i, j
}
func (h *journeyHeap) Push(x any) {
	j := x.(*journey)
	j.idx = len(*h)
	*h = append(*h, j)
}
func (h *journeyHeap) Pop() any {
	s := *h
	j := s[len(s)-1]
	s[len(s)-1] = nil
	*h = s[:len(s)-1]
	j.idx = -1
	return j
}
