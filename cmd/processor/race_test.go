//go:build race

package main

// raceDetector is true in a -race build, which renders documents about ten
// times slower: the crash test then runs a smaller log (see
// TestCrashRecoveryExactlyOnce).
const raceDetector = true
