//go:build !linux

package dendritetest

import "syscall"

func sysProcAttr() *syscall.SysProcAttr {
	return nil
}
