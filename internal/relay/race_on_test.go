//go:build race

package relay

// raceEnabled slows the load test's pace: the race detector makes the
// relay several times slower, and the test checks behaviour, not speed.
const raceEnabled = true
