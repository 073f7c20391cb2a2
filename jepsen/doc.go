// Package jepsen will hold consistency checks against real orbit processes
// with faults injected from outside.
package jepsen
