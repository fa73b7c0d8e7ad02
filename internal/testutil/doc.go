// Package testutil holds the helpers the project's tests share, so that each
// rule they follow lives in one place: how to wait for something to happen
// (WaitUntil, Poll), when a missing tool skips a test and when it fails it
// (Tool and the LASTSEEN_REQUIRE_* variables), how to start a private X
// server (StartXvfb) and session bus (StartSessionBus) that die with the
// test, and how to build a program of this module once per test binary
// (BuildBinary).
//
// Only tests and other test-support packages import it; nothing shipped
// links it (archtest holds that).
//
// Waits here wait for something to happen, never to prove that something
// did not: a test that must show an absence sends a later marker and waits
// for that instead, or runs under testing/synctest.
package testutil
