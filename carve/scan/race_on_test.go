//go:build race

package scan

// raceOn: timings under the race detector mean nothing.
const raceOn = true
