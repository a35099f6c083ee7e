package main

import (
	"fmt"
	"math"
	"os"
	"slices"
	"sync"

	"golang.org/x/sys/unix"
)

// pageSize is the granularity at which writes are buffered.
const pageSize = 4096

// overlay is what one file's writes changed since its last fsync, kept in memory. The file's
// content is the backing file with these pages laid over it; its size is the larger of the backing
// file's size and the end of the furthest buffered write.
//
// Invariant: bytes of a buffered page past the file's size are zero.
//
// All methods expect the caller to hold mu.
type overlay struct {
	// pages maps a page index to its content; a nil slice is a punched page (zeros, deallocated).
	pages map[int64][]byte
	// end is the end of the furthest buffered write (0 when none).
	end int64
	// rw reads and writes the backing file; open exactly while pages are buffered.
	rw *os.File
	// opens counts the open handles of the file (guarded by lazyFS.mu, not by the overlay's own lock).
	opens int

	mu sync.Mutex
}

func newOverlay() *overlay { return &overlay{pages: map[int64][]byte{}} }

func (o *overlay) dirty() bool { return len(o.pages) > 0 }

// size is the file's size: the backing file's, or further when buffered writes extend it.
func (o *overlay) size(fd int) (int64, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return 0, err
	}
	return max(st.Size, o.end), nil
}

// ensureRW opens a read-write descriptor of the backing file that fd (any open descriptor of it) refers to.
func (o *overlay) ensureRW(fd int) error {
	if o.rw != nil {
		return nil
	}
	f, err := os.OpenFile(fmt.Sprintf("/proc/self/fd/%d", fd), os.O_RDWR, 0)
	if err != nil {
		return err
	}
	o.rw = f
	return nil
}

// tidy closes the read-write descriptor once nothing is buffered.
func (o *overlay) tidy() {
	if !o.dirty() && o.rw != nil {
		_ = o.rw.Close()
		o.rw = nil
	}
	if !o.dirty() {
		o.end = 0
	}
}

// drop forgets everything buffered (the file is gone).
func (o *overlay) drop() {
	clear(o.pages)
	o.tidy()
}

// page returns page idx for modification, loading it from the backing file when not buffered.
func (o *overlay) page(idx int64) ([]byte, error) {
	p, ok := o.pages[idx]
	if ok && p != nil {
		return p, nil
	}
	p = make([]byte, pageSize)
	if !ok {
		if err := preadFull(int(o.rw.Fd()), p, idx*pageSize); err != nil {
			return nil, err
		}
	}
	o.pages[idx] = p
	return p, nil
}

// write buffers data at off. fd is any open descriptor of the file.
func (o *overlay) write(fd int, data []byte, off int64) error {
	if err := o.ensureRW(fd); err != nil {
		return err
	}
	defer o.tidy()
	for done := 0; done < len(data); {
		pos := off + int64(done)
		idx, in := pos/pageSize, int(pos%pageSize)
		n := min(pageSize-in, len(data)-done)
		var p []byte
		if n == pageSize {
			if p = o.pages[idx]; p == nil {
				p = make([]byte, pageSize)
				o.pages[idx] = p
			}
		} else {
			var err error
			if p, err = o.page(idx); err != nil {
				return err
			}
		}
		copy(p[in:], data[done:done+n])
		done += n
	}
	o.end = max(o.end, off+int64(len(data)))
	return nil
}

// punch buffers a hole punch (FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE) of [off, off+length):
// whole pages become punched pages, partly covered ones are zeroed in place.
func (o *overlay) punch(fd int, off, length int64) error {
	size, err := o.size(fd)
	if err != nil {
		return err
	}
	end := min(off+length, size)
	if off >= end {
		return nil
	}
	if err := o.ensureRW(fd); err != nil {
		return err
	}
	defer o.tidy()
	for pos := off; pos < end; {
		idx, in := pos/pageSize, pos%pageSize
		n := min(pageSize-in, end-pos)
		// A page covered up to the end of the file counts as whole: past the end it is zero anyway.
		if in == 0 && (n == pageSize || pos+n == size) {
			o.pages[idx] = nil
		} else {
			p, err := o.page(idx)
			if err != nil {
				return err
			}
			clear(p[in : in+n])
		}
		pos += n
	}
	return nil
}

// truncate trims the buffered pages to a file of size bytes (the backing file was just truncated).
func (o *overlay) truncate(size int64) {
	for idx, p := range o.pages {
		start := idx * pageSize
		switch {
		case start >= size:
			delete(o.pages, idx)
		case p != nil && start+pageSize > size:
			clear(p[size-start:])
		}
	}
	o.end = min(o.end, size)
	o.tidy()
}

// read fills buf from off with the file's content seen through fd (a readable descriptor of it);
// returns how many bytes the file holds there.
func (o *overlay) read(fd int, buf []byte, off int64) (int, error) {
	size, err := o.size(fd)
	if err != nil {
		return 0, err
	}
	if off >= size {
		return 0, nil
	}
	n := int(min(int64(len(buf)), size-off))
	buf = buf[:n]
	if err := preadFull(fd, buf, off); err != nil {
		return 0, err
	}
	if !o.dirty() {
		return n, nil
	}
	for pos, end := off, off+int64(n); pos < end; {
		idx, in := pos/pageSize, pos%pageSize
		c := min(pageSize-in, end-pos)
		if p, ok := o.pages[idx]; ok {
			dst := buf[pos-off : pos-off+c]
			if p == nil {
				clear(dst)
			} else {
				copy(dst, p[in:in+c])
			}
		}
		pos += c
	}
	return n, nil
}

// flush writes the buffered pages to the backing file, applies the buffered punches, syncs it
// (fdatasync when datasync, else fsync) and empties the overlay. fd is any open descriptor of the
// file (synced when nothing is buffered), or -1.
func (o *overlay) flush(fd int, datasync bool) error {
	if !o.dirty() {
		if fd < 0 {
			return nil
		}
		return syncFd(fd, datasync)
	}
	rw := int(o.rw.Fd())
	var st unix.Stat_t
	if err := unix.Fstat(rw, &st); err != nil {
		return err
	}
	size := max(st.Size, o.end)
	idxs := o.sortedPages()
	for _, idx := range idxs {
		p, start := o.pages[idx], idx*pageSize
		if p == nil || start >= size {
			continue
		}
		if err := pwriteFull(rw, p[:min(pageSize, size-start)], start); err != nil {
			return err
		}
	}
	if st.Size < size {
		if err := unix.Ftruncate(rw, size); err != nil {
			return err
		}
	}
	for i := 0; i < len(idxs); i++ {
		if o.pages[idxs[i]] != nil {
			continue
		}
		j := i
		for j+1 < len(idxs) && idxs[j+1] == idxs[j]+1 && o.pages[idxs[j+1]] == nil {
			j++
		}
		start, end := idxs[i]*pageSize, min((idxs[j]+1)*pageSize, size)
		if end > start {
			if err := punchBacking(rw, start, end-start); err != nil {
				return err
			}
		}
		i = j
	}
	if err := syncFd(rw, datasync); err != nil {
		return err
	}
	clear(o.pages)
	o.tidy()
	return nil
}

func (o *overlay) sortedPages() []int64 {
	idxs := make([]int64, 0, len(o.pages))
	for idx := range o.pages {
		idxs = append(idxs, idx)
	}
	slices.Sort(idxs)
	return idxs
}

// seek answers lseek(2) SEEK_DATA / SEEK_HOLE over the overlay: buffered pages are data,
// punched pages are holes, the rest is as the backing file says (past its end: a hole).
func (o *overlay) seek(fd int, off int64, whence int) (int64, error) {
	size, err := o.size(fd)
	if err != nil {
		return 0, err
	}
	if off < 0 {
		return 0, unix.EINVAL
	}
	if off >= size {
		return 0, unix.ENXIO
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return 0, err
	}
	backing := st.Size
	idxs := o.sortedPages()
	// nextBuffered is the offset of the first buffered page at or after page idx.
	nextBuffered := func(idx int64) int64 {
		i, _ := slices.BinarySearch(idxs, idx)
		if i == len(idxs) {
			return math.MaxInt64
		}
		return idxs[i] * pageSize
	}
	for pos := off; pos < size; {
		idx := pos / pageSize
		if p, ok := o.pages[idx]; ok {
			if (p != nil) == (whence == unix.SEEK_DATA) {
				return pos, nil
			}
			pos = (idx + 1) * pageSize
			continue
		}
		// An unbuffered stretch up to the next buffered page: the backing file decides.
		next := nextBuffered(idx + 1)
		if pos >= backing {
			if whence == unix.SEEK_HOLE {
				return pos, nil
			}
			pos = next
			continue
		}
		at, err := unix.Seek(fd, pos, whence)
		if err == unix.ENXIO {
			at = math.MaxInt64
		} else if err != nil {
			return 0, err
		}
		if at < next {
			return min(at, size), nil
		}
		pos = next
	}
	if whence == unix.SEEK_HOLE {
		return size, nil
	}
	return 0, unix.ENXIO
}

func preadFull(fd int, buf []byte, off int64) error {
	for done := 0; done < len(buf); {
		n, err := unix.Pread(fd, buf[done:], off+int64(done))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		if n == 0 {
			clear(buf[done:])
			return nil
		}
		done += n
	}
	return nil
}

func pwriteFull(fd int, buf []byte, off int64) error {
	for done := 0; done < len(buf); {
		n, err := unix.Pwrite(fd, buf[done:], off+int64(done))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		done += n
	}
	return nil
}

var zeros = make([]byte, 1<<20)

// punchBacking deallocates a range of the backing file, or writes zeros where it cannot punch holes.
func punchBacking(fd int, off, length int64) error {
	err := unix.Fallocate(fd, unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, off, length)
	if err != unix.EOPNOTSUPP {
		return err
	}
	for done := int64(0); done < length; {
		n := min(int64(len(zeros)), length-done)
		if err := pwriteFull(fd, zeros[:n], off+done); err != nil {
			return err
		}
		done += n
	}
	return nil
}

func syncFd(fd int, datasync bool) error {
	if datasync {
		return unix.Fdatasync(fd)
	}
	return unix.Fsync(fd)
}
