package testhost

import (
	"net/http"
	"slices"
	"sort"

	"github.com/mattermost/mattermost/server/public/model"
)

// UploadFile stores a file like the server's plugin API: the channel must
// exist (if given), the size must not exceed FileSettings.MaxFileSize, the
// creator is "nouser", and the file is not attached to a post until a post
// lists it in FileIds.
func (a *API) UploadFile(data []byte, channelID string, filename string) (*model.FileInfo, *model.AppError) {
	return a.s.uploadFile("nouser", channelID, filename, data)
}

// GetFileInfo returns a live file's info.
func (a *API) GetFileInfo(fileID string) (*model.FileInfo, *model.AppError) {
	a.s.mu.RLock()
	defer a.s.mu.RUnlock()
	if fi := a.s.st.files[fileID]; fi != nil && fi.DeleteAt == 0 {
		return copyFileInfo(fi), nil
	}
	return nil, notFound("GetFileInfo", "app.file_info.get.app_error", "file_id="+fileID)
}

// GetFile returns a live file's content.
func (a *API) GetFile(fileID string) ([]byte, *model.AppError) {
	a.s.mu.RLock()
	defer a.s.mu.RUnlock()
	if fi := a.s.st.files[fileID]; fi != nil && fi.DeleteAt == 0 {
		return slices.Clone(a.s.st.fileData[fileID]), nil
	}
	return nil, notFound("GetFile", "app.file_info.get.app_error", "file_id="+fileID)
}

// GetFileInfos lists file infos filtered by the options (UserIds,
// ChannelIds, Since, IncludeDeleted), sorted by create_at (or size, name),
// one page at a time.
func (a *API) GetFileInfos(pageNum, perPage int, opt *model.GetFileInfosOptions) ([]*model.FileInfo, *model.AppError) {
	if pageNum < 0 || perPage < 0 {
		return nil, badRequest("GetFileInfos", "api.context.invalid_param.app_error", "page and per_page must not be negative")
	}
	if opt == nil {
		opt = &model.GetFileInfosOptions{}
	}
	a.s.mu.RLock()
	defer a.s.mu.RUnlock()
	var out []*model.FileInfo
	for _, fi := range a.s.st.files {
		if (!opt.IncludeDeleted && fi.DeleteAt != 0) ||
			(len(opt.UserIds) > 0 && !slices.Contains(opt.UserIds, fi.CreatorId)) ||
			(len(opt.ChannelIds) > 0 && !slices.Contains(opt.ChannelIds, fi.ChannelId)) ||
			(opt.Since != 0 && fi.CreateAt < opt.Since) {
			continue
		}
		out = append(out, copyFileInfo(fi))
	}
	sort.SliceStable(out, func(i, j int) bool {
		var less bool
		switch opt.SortBy {
		case model.FileinfoSortBySize:
			less = out[i].Size < out[j].Size
		default:
			less = out[i].CreateAt < out[j].CreateAt || (out[i].CreateAt == out[j].CreateAt && out[i].Id < out[j].Id)
		}
		if opt.SortDescending {
			return !less
		}
		return less
	})
	return page(out, pageNum, perPage), nil
}

// CopyFileInfos duplicates file infos (sharing their content) for userID,
// unattached, returning the new IDs — like the server, for reposting files.
func (a *API) CopyFileInfos(userID string, fileIDs []string) ([]string, *model.AppError) {
	a.s.mu.Lock()
	defer a.s.mu.Unlock()
	var out []string
	now := a.s.now()
	for _, id := range fileIDs {
		fi := a.s.st.files[id]
		if fi == nil {
			return nil, notFound("CopyFileInfos", "app.file_info.get.app_error", "file_id="+id)
		}
		c := copyFileInfo(fi)
		c.Id = model.NewId()
		c.CreatorId = userID
		c.CreateAt = now
		c.UpdateAt = now
		c.PostId = ""
		c.DeleteAt = 0
		if err := c.IsValid(); err != nil {
			return nil, err
		}
		a.s.st.files[c.Id] = c
		a.s.st.fileData[c.Id] = a.s.st.fileData[id]
		out = append(out, c.Id)
	}
	return out, nil
}

// GetFileLink returns a public link, if FileSettings.EnablePublicLink is on
// and the file is attached to a post, like the server.
func (a *API) GetFileLink(fileID string) (string, *model.AppError) {
	a.s.mu.RLock()
	defer a.s.mu.RUnlock()
	if e := a.s.st.config.FileSettings.EnablePublicLink; e == nil || !*e {
		return "", appErr("GetFileLink", "plugin_api.get_file_link.disabled.app_error", http.StatusNotImplemented, "")
	}
	fi := a.s.st.files[fileID]
	if fi == nil || fi.DeleteAt != 0 {
		return "", notFound("GetFileLink", "app.file_info.get.app_error", "file_id="+fileID)
	}
	if fi.PostId == "" {
		return "", badRequest("GetFileLink", "plugin_api.get_file_link.no_post.app_error", "file_id="+fileID)
	}
	return siteURLOf(a.s.st.config) + "/files/" + fileID + "/public?h=testhost", nil
}
