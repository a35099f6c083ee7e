// Command lazyfs mounts a passthrough of a directory in which file data written but not fsynced is
// held in this process's memory, so killing the process is a power cut: what was not fsynced is lost.
//
//	lazyfs --backing DIR --mount MNT [--sync-on-exit] [--die-with-parent] [--debug]
//
// Semantics:
//   - write(2) and hole punches (fallocate PUNCH_HOLE|KEEP_SIZE) of regular files are buffered per
//     file at 4 KiB granularity; reads see them merged over the backing file, stat sees the size they
//     extend the file to, lseek SEEK_DATA/SEEK_HOLE sees buffered data as data and punches as holes.
//   - fsync(2)/fdatasync(2) of a file (any descriptor of it) writes that file's buffered pages to DIR
//     and fsyncs the backing file; a file opened O_SYNC/O_DSYNC persists each write before it returns.
//     close(2) persists nothing, and neither do sync(2)/syncfs(2): the kernel does not pass them on to
//     a FUSE daemon.
//   - Everything else (create, mkdir, rename, link, unlink, rmdir, chmod, utimes, truncate, plain
//     fallocate) goes to DIR at once; a truncate also trims the buffered writes.
//   - The kernel keeps no page cache for file data (direct I/O) and attributes and entries are not
//     cached, so the process's memory is the only place an unsynced write lives.
//   - Not supported: O_TMPFILE, shared writable mmap (direct I/O), other fallocate modes.
//
// It prints "ready" on stdout once mounted. SIGTERM or SIGINT unmounts and exits, dropping what is
// still buffered (a clean shutdown loses the same as a power cut) unless --sync-on-exit is given.
// A power cut is SIGKILL followed by `umount -l MNT`; a new lazyfs on the same DIR and MNT is the
// machine after the reboot.
package main

import (
	"flag"
	"fmt"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
)

func main() {
	backing := flag.String("backing", "", "directory that holds the persisted files")
	mount := flag.String("mount", "", "where to mount the file system")
	syncOnExit := flag.Bool("sync-on-exit", false, "persist all buffered writes on SIGTERM/SIGINT")
	dieWithParent := flag.Bool("die-with-parent", false, "get SIGKILL when the parent process exits")
	debug := flag.Bool("debug", false, "log every FUSE request")
	flag.Parse()
	log.SetFlags(log.Lmicroseconds)
	log.SetPrefix("lazyfs: ")
	if *backing == "" || *mount == "" || flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}
	if *dieWithParent {
		ppid := os.Getppid()
		if err := unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(syscall.SIGKILL), 0, 0, 0); err != nil {
			log.Fatalf("prctl: %v", err)
		}
		if os.Getppid() != ppid {
			os.Exit(1)
		}
	}
	dir, err := filepath.Abs(*backing)
	if err != nil {
		log.Fatal(err)
	}
	mnt, err := filepath.Abs(*mount)
	if err != nil {
		log.Fatal(err)
	}
	// The mount a killed lazyfs left behind answers ENOTCONN until it is unmounted.
	var st unix.Stat_t
	if err := unix.Stat(mnt, &st); err == unix.ENOTCONN {
		log.Printf("detaching the dead mount at %s", mnt)
		if err := unix.Unmount(mnt, unix.MNT_DETACH); err != nil {
			log.Fatalf("unmount %s: %v", mnt, err)
		}
	}

	lfs, root, err := newLazyFS(dir)
	if err != nil {
		log.Fatal(err)
	}
	noCache := time.Duration(0)
	server, err := fs.Mount(mnt, root, &fs.Options{
		EntryTimeout:    &noCache,
		AttrTimeout:     &noCache,
		NegativeTimeout: &noCache,
		MountOptions: fuse.MountOptions{
			FsName:            dir,
			Name:              "lazyfs",
			DirectMountStrict: true,
			AllowOther:        true,
			MaxWrite:          1 << 20,
			Debug:             *debug,
		},
	})
	if err != nil {
		log.Fatalf("mount %s on %s: %v", dir, mnt, err)
	}
	fmt.Println("ready")

	signals := make(chan os.Signal, 1)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	done := make(chan struct{})
	go func() {
		server.Wait()
		close(done)
	}()
	select {
	case <-done:
		log.Printf("%s was unmounted", mnt)
		return
	case sig := <-signals:
		log.Printf("%v: unmounting %s", sig, mnt)
	}
	if *syncOnExit {
		if err := lfs.syncAll(); err != nil {
			log.Printf("persisting buffered writes: %v", err)
		}
	}
	if err := server.Unmount(); err != nil {
		// Still in use: detach it; those who have files open get errors once this process is gone.
		log.Printf("unmount: %v; detaching", err)
		if err := unix.Unmount(mnt, unix.MNT_DETACH); err != nil {
			log.Printf("detach: %v", err)
		}
	}
}
