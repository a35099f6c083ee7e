package main

import (
	"context"
	"path/filepath"
	"sync"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"
)

// fileKey names a backing file as go-fuse names its inode (StableAttr): inode number and generation.
// Overlays are kept by this key rather than on the node, so they outlive the kernel forgetting an
// inode of a closed file.
type fileKey struct{ ino, gen uint64 }

// lazyFS is the loopback file system whose file data writes wait in memory until fsync.
type lazyFS struct {
	root *fs.LoopbackRoot

	mu    sync.Mutex
	files map[fileKey]*overlay // files that are open or have buffered writes
}

func newLazyFS(backing string) (*lazyFS, fs.InodeEmbedder, error) {
	var st syscall.Stat_t
	if err := syscall.Stat(backing, &st); err != nil {
		return nil, nil, err
	}
	l := &lazyFS{files: map[fileKey]*overlay{}}
	l.root = &fs.LoopbackRoot{
		Path: backing,
		Dev:  uint64(st.Dev),
		NewNode: func(r *fs.LoopbackRoot, _ *fs.Inode, _ string, _ *syscall.Stat_t) fs.InodeEmbedder {
			return &node{LoopbackNode: fs.LoopbackNode{RootData: r}, lfs: l}
		},
	}
	root := l.root.NewNode(l.root, nil, "", &st)
	l.root.RootNode = root
	return l, root, nil
}

// acquire returns the overlay of an opened file (counting the open).
func (l *lazyFS) acquire(k fileKey) *overlay {
	l.mu.Lock()
	defer l.mu.Unlock()
	o := l.files[k]
	if o == nil {
		o = newOverlay()
		l.files[k] = o
	}
	o.opens++
	return o
}

// release counts a close; the buffered writes of a file whose last name and last handle are gone are dropped.
func (l *lazyFS) release(k fileKey, o *overlay, unlinked bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	o.mu.Lock()
	defer o.mu.Unlock()
	o.opens--
	if unlinked && o.opens == 0 {
		o.drop()
	}
	l.forgetIfIdle(k, o)
}

// forgetIfIdle removes an overlay with nothing buffered and no open handle; needs l.mu and o.mu.
func (l *lazyFS) forgetIfIdle(k fileKey, o *overlay) {
	if o.opens == 0 && !o.dirty() {
		o.tidy()
		delete(l.files, k)
	}
}

// with runs fn on the overlay of k (nil when the file has none) with both locks held.
func (l *lazyFS) with(k fileKey, fn func(o *overlay) error) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	o := l.files[k]
	if o == nil {
		return fn(nil)
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	err := fn(o)
	l.forgetIfIdle(k, o)
	return err
}

// bufferedEnd is the end of the furthest buffered write of k (0 when none).
func (l *lazyFS) bufferedEnd(k fileKey) int64 {
	var end int64
	_ = l.with(k, func(o *overlay) error {
		if o != nil {
			end = o.end
		}
		return nil
	})
	return end
}

// forgetRemoved drops the buffered writes of a file whose last name was removed and that no one has open.
func (l *lazyFS) forgetRemoved(k fileKey) {
	_ = l.with(k, func(o *overlay) error {
		if o != nil && o.opens == 0 {
			o.drop()
		}
		return nil
	})
}

// syncAll persists every file's buffered writes (syncfs).
func (l *lazyFS) syncAll() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	var first error
	for k, o := range l.files {
		o.mu.Lock()
		if err := o.flush(-1, false); err != nil && first == nil {
			first = err
		}
		l.forgetIfIdle(k, o)
		o.mu.Unlock()
	}
	return first
}

// keyAt computes the key go-fuse gives the file at path (see LoopbackRoot.idFromStat), and its link count.
func (l *lazyFS) keyAt(path string) (fileKey, uint32, error) {
	var x unix.Statx_t
	if err := unix.Statx(unix.AT_FDCWD, path, unix.AT_SYMLINK_NOFOLLOW, unix.STATX_BASIC_STATS|unix.STATX_BTIME, &x); err != nil {
		return fileKey{}, 0, err
	}
	dev := unix.Mkdev(x.Dev_major, x.Dev_minor)
	swapped := (dev << 32) | (dev >> 32)
	rootSwapped := (l.root.Dev << 32) | (l.root.Dev >> 32)
	gen := uint64(1)
	if x.Mask&unix.STATX_BTIME != 0 && (x.Btime.Sec != 0 || x.Btime.Nsec != 0) {
		gen = uint64(x.Btime.Sec)*1e9 + uint64(x.Btime.Nsec)
	}
	return fileKey{ino: (swapped ^ rootSwapped) ^ x.Ino, gen: gen}, x.Nlink, nil
}

// node is a file or directory: a loopback node whose regular files' data goes through an overlay.
type node struct {
	fs.LoopbackNode
	lfs *lazyFS
}

func (n *node) key() fileKey {
	a := n.StableAttr()
	return fileKey{ino: a.Ino, gen: a.Gen}
}

func (n *node) isFile() bool { return n.StableAttr().Mode&syscall.S_IFMT == syscall.S_IFREG }

// backingPath is the node's path in the backing directory.
func (n *node) backingPath() string {
	return filepath.Join(n.RootData.Path, n.Path(n.RootData.RootNode.EmbeddedInode()))
}

// fixSize reports a size that includes the buffered writes past the backing file's end.
func (n *node) fixSize(size *uint64) {
	if !n.isFile() {
		return
	}
	if end := n.lfs.bufferedEnd(n.key()); end > int64(*size) {
		*size = uint64(end)
	}
}

func childNode(ch *fs.Inode) *node {
	nd, _ := ch.Operations().(*node)
	return nd
}

var _ = (fs.NodeLookuper)((*node)(nil))

func (n *node) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	ch, errno := n.LoopbackNode.Lookup(ctx, name, out)
	if errno == 0 {
		if c := childNode(ch); c != nil {
			c.fixSize(&out.Attr.Size)
		}
	}
	return ch, errno
}

var _ = (fs.NodeOpener)((*node)(nil))

// Open opens the backing file; the kernel keeps no page cache for it (direct I/O), so every read and
// write comes here.
func (n *node) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	o := n.lfs.acquire(n.key())
	o.mu.Lock()
	fh, _, errno := n.LoopbackNode.Open(ctx, flags&^syscall.O_DIRECT)
	if errno == 0 && flags&syscall.O_TRUNC != 0 {
		o.truncate(0)
	}
	o.mu.Unlock()
	if errno != 0 {
		n.lfs.release(n.key(), o, false)
		return nil, 0, errno
	}
	return newHandle(n, o, fh, flags), fuse.FOPEN_DIRECT_IO, 0
}

var _ = (fs.NodeCreater)((*node)(nil))

func (n *node) Create(ctx context.Context, name string, flags uint32, mode uint32, out *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	ch, fh, _, errno := n.LoopbackNode.Create(ctx, name, flags&^syscall.O_DIRECT, mode, out)
	if errno != 0 {
		return nil, nil, 0, errno
	}
	c := childNode(ch)
	o := n.lfs.acquire(c.key())
	o.mu.Lock()
	if flags&syscall.O_TRUNC != 0 {
		o.truncate(0)
	}
	out.Attr.Size = uint64(max(int64(out.Attr.Size), o.end))
	o.mu.Unlock()
	return ch, newHandle(c, o, fh, flags), fuse.FOPEN_DIRECT_IO, 0
}

var _ = (fs.NodeTmpfiler)((*node)(nil))

// Tmpfile (O_TMPFILE) is not supported: such a file has no name to write its data back through.
func (n *node) Tmpfile(context.Context, uint32, uint32, *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	return nil, nil, 0, syscall.EOPNOTSUPP
}

var _ = (fs.NodeCopyFileRanger)((*node)(nil))

// CopyFileRange is refused so the kernel falls back to reads and writes, which go through the overlay.
func (n *node) CopyFileRange(context.Context, fs.FileHandle, uint64, *fs.Inode, fs.FileHandle, uint64, uint64, uint64) (uint32, syscall.Errno) {
	return 0, syscall.EOPNOTSUPP
}

var _ = (fs.NodeGetattrer)((*node)(nil))

func (n *node) Getattr(ctx context.Context, f fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	var lf fs.FileHandle
	if h, ok := f.(*handle); ok {
		lf = h.lf
	}
	if errno := n.LoopbackNode.Getattr(ctx, lf, out); errno != 0 {
		return errno
	}
	n.fixSize(&out.Size)
	return 0
}

var _ = (fs.NodeStatxer)((*node)(nil))

func (n *node) Statx(ctx context.Context, f fs.FileHandle, flags uint32, mask uint32, out *fuse.StatxOut) syscall.Errno {
	var lf fs.FileHandle
	if h, ok := f.(*handle); ok {
		lf = h.lf
	}
	if errno := n.LoopbackNode.Statx(ctx, lf, flags, mask, out); errno != 0 {
		return errno
	}
	n.fixSize(&out.Size)
	return 0
}

var _ = (fs.NodeSetattrer)((*node)(nil))

// Setattr applies to the backing file at once; a size change also trims the buffered writes.
func (n *node) Setattr(ctx context.Context, f fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	h, _ := f.(*handle)
	if size, ok := in.GetSize(); ok && n.isFile() {
		err := n.lfs.with(n.key(), func(o *overlay) error {
			var err error
			if h != nil {
				err = unix.Ftruncate(h.fd, int64(size))
			} else {
				err = unix.Truncate(n.backingPath(), int64(size))
			}
			if err == nil && o != nil {
				o.truncate(int64(size))
			}
			return err
		})
		if err != nil {
			return fs.ToErrno(err)
		}
		in.Valid &^= fuse.FATTR_SIZE
	}
	var lf fs.FileHandle
	if h != nil {
		lf = h.lf
	}
	if errno := n.LoopbackNode.Setattr(ctx, lf, in, out); errno != 0 {
		return errno
	}
	n.fixSize(&out.Size)
	return 0
}

var _ = (fs.NodeFsyncer)((*node)(nil))

// Fsync persists the file's buffered writes (FUSE FSYNC; bit 0 of flags asks for fdatasync).
func (n *node) Fsync(ctx context.Context, f fs.FileHandle, flags uint32) syscall.Errno {
	datasync := flags&1 != 0
	if !n.isFile() {
		fd, err := unix.Open(n.backingPath(), unix.O_RDONLY|unix.O_DIRECTORY, 0)
		if err != nil {
			return fs.ToErrno(err)
		}
		defer unix.Close(fd)
		return fs.ToErrno(syncFd(fd, datasync))
	}
	if h, ok := f.(*handle); ok {
		h.o.mu.Lock()
		defer h.o.mu.Unlock()
		return fs.ToErrno(h.o.flush(h.fd, datasync))
	}
	return fs.ToErrno(n.lfs.with(n.key(), func(o *overlay) error {
		if o == nil {
			return nil
		}
		return o.flush(-1, datasync)
	}))
}

var _ = (fs.NodeUnlinker)((*node)(nil))

func (n *node) Unlink(ctx context.Context, name string) syscall.Errno {
	k, nlink, err := n.lfs.keyAt(filepath.Join(n.backingPath(), name))
	if errno := n.LoopbackNode.Unlink(ctx, name); errno != 0 {
		return errno
	}
	if err == nil && nlink <= 1 {
		n.lfs.forgetRemoved(k)
	}
	return 0
}

var _ = (fs.NodeRenamer)((*node)(nil))

func (n *node) Rename(ctx context.Context, name string, newParent fs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	// A rename over an existing file removes that file's name, as an unlink would.
	var replaced *fileKey
	if np, ok := newParent.(*node); ok && flags&unix.RENAME_EXCHANGE == 0 {
		src, _, srcErr := n.lfs.keyAt(filepath.Join(n.backingPath(), name))
		dst, nlink, dstErr := n.lfs.keyAt(filepath.Join(np.backingPath(), newName))
		if srcErr == nil && dstErr == nil && dst != src && nlink <= 1 {
			replaced = &dst
		}
	}
	if errno := n.LoopbackNode.Rename(ctx, name, newParent, newName, flags); errno != 0 {
		return errno
	}
	if replaced != nil {
		n.lfs.forgetRemoved(*replaced)
	}
	return 0
}

// handle is an open file: a descriptor of the backing file for reads and metadata, and the file's overlay.
type handle struct {
	n  *node
	o  *overlay
	lf *fs.LoopbackFile
	fd int
	// sync: opened with O_SYNC or O_DSYNC, so every write is persisted before it returns.
	sync, datasync bool
}

func newHandle(n *node, o *overlay, fh fs.FileHandle, flags uint32) *handle {
	lf := fh.(*fs.LoopbackFile)
	fd, _ := lf.PassthroughFd()
	return &handle{
		n:        n,
		o:        o,
		lf:       lf,
		fd:       fd,
		sync:     flags&syscall.O_DSYNC != 0,
		datasync: flags&syscall.O_SYNC != syscall.O_SYNC,
	}
}

var (
	_ = (fs.FileReader)((*handle)(nil))
	_ = (fs.FileWriter)((*handle)(nil))
	_ = (fs.FileFlusher)((*handle)(nil))
	_ = (fs.FileReleaser)((*handle)(nil))
	_ = (fs.FileLseeker)((*handle)(nil))
	_ = (fs.FileAllocater)((*handle)(nil))
)

func (h *handle) Read(_ context.Context, buf []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	h.o.mu.Lock()
	defer h.o.mu.Unlock()
	n, err := h.o.read(h.fd, buf, off)
	if err != nil {
		return nil, fs.ToErrno(err)
	}
	return fuse.ReadResultData(buf[:n]), 0
}

func (h *handle) Write(_ context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	h.o.mu.Lock()
	defer h.o.mu.Unlock()
	if err := h.o.write(h.fd, data, off); err != nil {
		return 0, fs.ToErrno(err)
	}
	if h.sync {
		if err := h.o.flush(h.fd, h.datasync); err != nil {
			return 0, fs.ToErrno(err)
		}
	}
	return uint32(len(data)), 0
}

// Flush (close(2)) persists nothing.
func (h *handle) Flush(context.Context) syscall.Errno { return 0 }

func (h *handle) Release(ctx context.Context) syscall.Errno {
	var st unix.Stat_t
	unlinked := unix.Fstat(h.fd, &st) == nil && st.Nlink == 0
	errno := h.lf.Release(ctx)
	h.n.lfs.release(h.n.key(), h.o, unlinked)
	return errno
}

func (h *handle) Lseek(_ context.Context, off uint64, whence uint32) (uint64, syscall.Errno) {
	if whence != unix.SEEK_DATA && whence != unix.SEEK_HOLE {
		return h.lf.Lseek(context.Background(), off, whence)
	}
	h.o.mu.Lock()
	defer h.o.mu.Unlock()
	at, err := h.o.seek(h.fd, int64(off), int(whence))
	if err != nil {
		return 0, fs.ToErrno(err)
	}
	return uint64(at), 0
}

// Allocate buffers hole punches like writes; a plain allocation (which changes no content) goes
// to the backing file at once. Other modes are refused.
func (h *handle) Allocate(ctx context.Context, off uint64, size uint64, mode uint32) syscall.Errno {
	h.o.mu.Lock()
	defer h.o.mu.Unlock()
	switch mode {
	case unix.FALLOC_FL_PUNCH_HOLE | unix.FALLOC_FL_KEEP_SIZE:
		return fs.ToErrno(h.o.punch(h.fd, int64(off), int64(size)))
	case 0, unix.FALLOC_FL_KEEP_SIZE:
		return h.lf.Allocate(ctx, off, size, mode)
	default:
		return syscall.EOPNOTSUPP
	}
}
