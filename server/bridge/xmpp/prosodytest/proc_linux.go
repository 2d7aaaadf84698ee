package prosodytest

import "syscall"

// sysProcAttr makes the kernel kill Prosody if the test process dies
// without cleaning up, so no stray server keeps the ports.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
