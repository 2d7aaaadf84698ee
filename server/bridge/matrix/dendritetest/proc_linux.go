package dendritetest

import "syscall"

// sysProcAttr makes the kernel kill Dendrite if the test process dies
// without cleaning up, so no stray server keeps the port.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
